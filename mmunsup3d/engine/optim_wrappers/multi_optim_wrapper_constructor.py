"""One optimizer per sub-network, for GAN-style training (MMEngine ships no such constructor)."""
from typing import Optional, Union

from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn

from mmpose.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class Unsup3DOptimWrapperConstructor:
    """Build an :class:`OptimWrapperDict` with one optimizer wrapper per named sub-module.

    Example::

        optim_wrapper = dict(
            constructor='Unsup3DOptimWrapperConstructor',
            lifter=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-4)),
            discriminator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-4)))

    Each key names an attribute of the model (``model.lifter``...); an entry whose modules the
    config set to ``None`` (``model.discriminator=None``) is skipped. An entry may list
    ``modules=['lifter', 'elevation_net']`` to put several attributes under one optimizer; the
    key is then only the name used by ``train_step`` and ``param_scheduler``. Each entry may
    carry ``paramwise_cfg`` as in :class:`DefaultOptimWrapperConstructor`.

    Args:
        optim_wrapper_cfg: mapping from name to an optimizer wrapper config.
        paramwise_cfg: must be ``None``; give ``paramwise_cfg`` per entry instead.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        if not isinstance(optim_wrapper_cfg, dict) or not optim_wrapper_cfg:
            raise TypeError('optim_wrapper_cfg should be a non-empty dict of '
                            f'optimizer-wrapper configs, got {optim_wrapper_cfg!r}')
        if paramwise_cfg is not None:
            raise ValueError('Give paramwise_cfg inside each optimizer entry, not at the top')
        self.optim_wrapper_cfg = optim_wrapper_cfg

    @staticmethod
    def _group(model: nn.Module, names: list) -> Optional[nn.Module]:
        """The sub-module(s) ``names``; ``None`` when the config removed all of them
        (e.g. ``model.discriminator=None``: its optimizer is simply not built)."""
        if all(hasattr(model, n) and getattr(model, n) is None for n in names):
            return None
        names = [n for n in names if getattr(model, n, None) is not None or not hasattr(model, n)]
        missing = [n for n in names if getattr(model, n, None) is None]
        if missing:
            raise AttributeError(f'{type(model).__name__} has no sub-module(s) {missing} for '
                                 'the optimizer; available: '
                                 f'{[n for n, _ in model.named_children()]}')
        if len(names) == 1:
            return getattr(model, names[0])
        return nn.ModuleDict({n: getattr(model, n) for n in names})

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if hasattr(model, 'module'):
            model = model.module
        wrappers = {}
        for key, cfg in self.optim_wrapper_cfg.items():
            cfg = dict(cfg)
            names: Union[str, list] = cfg.pop('modules', [key])
            names = [names] if isinstance(names, str) else list(names)
            paramwise = cfg.pop('paramwise_cfg', None)
            module = self._group(model, names)
            if module is not None:
                wrappers[key] = DefaultOptimWrapperConstructor(cfg, paramwise)(module)
        return OptimWrapperDict(**wrappers)
