"""Re-save a trusted checkpoint so that the safe loader accepts it.

``python -m mmunsup3d convert-checkpoint IN OUT --trust`` is the deliberate route for a file
that :func:`~mmunsup3d.utils.checkpoint.safe_torch_load` refuses because it holds objects
outside the allow-list (a class of the user's own code in ``meta``, an old library's config
object, ...). It unpickles ``IN`` *unrestricted* (``weights_only=False``: any code the file
carries runs, which is why ``--trust`` is required) and writes ``OUT`` with only allow-listed
values; every other object is reported by its key path, and dropped only with
``--drop-unsupported``. ``OUT`` is written to a temporary file, loaded back with the safe
loader, and only then renamed into place; an existing ``OUT`` is never replaced.
"""
import os
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Any, List, Tuple

import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer

from .checkpoint import safe_torch_load

__all__ = ['convert_trusted_checkpoint', 'UnsupportedObjectsError']

_LEAVES = (torch.Tensor, np.generic, np.dtype, str, bytes, bytearray, int, float, complex,
           bool, type(None), torch.Size, torch.dtype, torch.device)
_DICTS = (OrderedDict, ConfigDict)


class UnsupportedObjectsError(ValueError):
    """The checkpoint holds objects the safe loader does not accept (listed by key path)."""


def _allowed(value: Any, path: str, dropped: List[Tuple[str, str]]) -> Tuple[bool, Any]:
    """``(keep, converted value)``; unsupported values are appended to ``dropped``."""
    if isinstance(value, np.ndarray) and not value.dtype.hasobject:
        return True, np.asarray(value)
    if isinstance(value, _LEAVES):
        return True, value
    if isinstance(value, HistoryBuffer):
        return True, value
    if isinstance(value, dict):
        out = type(value)() if type(value) in _DICTS else {}
        for key, child in value.items():
            keep, new = _allowed(child, f'{path}[{key!r}]', dropped)
            if keep:
                out[key] = new
        return True, out
    if isinstance(value, (list, tuple)):
        kept = [new for keep, new in (_allowed(c, f'{path}[{i}]', dropped)
                                      for i, c in enumerate(value)) if keep]
        return True, kept if isinstance(value, list) else tuple(kept)
    if isinstance(value, (set, frozenset)) and all(isinstance(v, _LEAVES) for v in value):
        return True, value
    dropped.append((path, f'{type(value).__module__}.{type(value).__qualname__}'))
    return False, None


def _write_verified(checkpoint: Any, dst: str) -> None:
    """Save to a temporary file beside ``dst``, load it back safely, then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(dst)}.', suffix='.part',
                               dir=osp.dirname(osp.abspath(dst)))
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(checkpoint, f)
        safe_torch_load(tmp)
        if osp.lexists(dst):  # checked again: never replace a file that appeared meanwhile
            raise FileExistsError(f'{dst} exists; not replaced')
        os.replace(tmp, dst)
    except BaseException:
        if osp.lexists(tmp):
            os.unlink(tmp)
        raise


def convert_trusted_checkpoint(src: str, dst: str, drop_unsupported: bool = False) -> List[str]:
    """Unpickle the trusted file ``src`` unrestricted and save its allow-listed part to ``dst``.

    Args:
        src: the checkpoint to convert. It is unpickled with ``weights_only=False``: only
            call this for files you trust.
        dst: the new file; must not exist.
        drop_unsupported: leave out objects outside the allow-list instead of failing.

    Returns:
        ``'<key path>: <type>'`` of every object that was left out (empty when none).

    Raises:
        FileNotFoundError: ``src`` is missing.
        FileExistsError: ``dst`` exists.
        UnsupportedObjectsError: ``src`` holds objects outside the allow-list and
            ``drop_unsupported`` is false (the message lists them; nothing was written).
    """
    if not osp.isfile(src):
        raise FileNotFoundError(f'Checkpoint not found: {src}')
    if osp.lexists(dst):
        raise FileExistsError(f'{dst} exists; choose a new file name (it is never replaced)')
    dropped: List[Tuple[str, str]] = []
    _, converted = _allowed(torch.load(src, map_location='cpu', weights_only=False),
                            'checkpoint', dropped)
    listed = [f'{path}: {kind}' for path, kind in dropped]
    if listed and not drop_unsupported:
        raise UnsupportedObjectsError(
            f'{src} holds {len(listed)} object(s) the safe loader does not accept: '
            + '; '.join(listed[:20]) + ('; ...' if len(listed) > 20 else '')
            + '. Pass --drop-unsupported to leave them out of the converted file.')
    _write_verified(converted, dst)
    return listed
