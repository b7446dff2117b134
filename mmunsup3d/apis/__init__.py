"""User-facing API: build a lifter, lift keypoints, fetch zoo checkpoints.

The zoo (HTTP downloads) is imported on first use, so ``import mmunsup3d`` for training does
not load it.
"""
from .inference import chirality_rate, init_lifter, lift_keypoints

__all__ = ['init_lifter', 'lift_keypoints', 'chirality_rate', 'download_checkpoint',
           'resolve_model', 'DownloadError']
_ZOO_NAMES = ('download_checkpoint', 'resolve_model', 'DownloadError')


def __getattr__(name: str):
    if name in _ZOO_NAMES:
        from ..utils import zoo
        return getattr(zoo, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
