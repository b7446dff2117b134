"""Switch a config's optimizer wrapper(s) to automatic mixed precision."""
from mmengine.config import Config

__all__ = ['enable_amp']


def enable_amp(cfg: Config) -> None:
    """Use ``AmpOptimWrapper`` for the single wrapper or every entry of a wrapper dict."""
    optim = cfg.optim_wrapper
    if optim.get('constructor') == 'Unsup3DOptimWrapperConstructor':
        for key, entry in optim.items():
            if key != 'constructor' and isinstance(entry, dict):
                entry['type'] = 'AmpOptimWrapper'
                entry.setdefault('loss_scale', 'dynamic')
    else:
        optim['type'] = 'AmpOptimWrapper'
        optim.setdefault('loss_scale', 'dynamic')
