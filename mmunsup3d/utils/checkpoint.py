"""Loading MMEngine checkpoints with ``torch.load(weights_only=True)``.

Since torch 2.6 ``torch.load`` unpickles only allow-listed globals. MMEngine 0.10.7 checkpoints
store the message hub (``HistoryBuffer`` objects holding NumPy arrays and scalars) in ``meta``,
so its resume fails. We allow exactly the classes such checkpoints need; nothing is ever loaded
with ``weights_only=False``.

Stock ``HistoryBuffer.__getstate__`` also pickles its built-in statistics methods as
``getattr(HistoryBuffer, 'min')``; allowing ``getattr`` would let a file reach arbitrary
attributes, so instead :func:`allow_checkpoint_globals` makes new checkpoints store only
*custom* statistics methods (the built-in ones are restored by ``__setstate__`` anyway). Old
checkpoints that carry ``getattr`` are refused with a clear error rather than unpickled.
"""
import pickle
from typing import Any, List, Optional, Union

import numpy as np
import torch

__all__ = ['checkpoint_safe_globals', 'allow_checkpoint_globals', 'safe_torch_load',
           'UnsafeCheckpointError']


class UnsafeCheckpointError(RuntimeError):
    """The checkpoint asks to unpickle an object outside the allow-list."""


def checkpoint_safe_globals() -> List[Any]:
    """The globals MMEngine checkpoints (state dicts + meta + message hub) need."""
    from mmengine.logging import HistoryBuffer
    from numpy.core.multiarray import _reconstruct, scalar  # numpy 2 re-exports from _core
    dtypes = [type(np.dtype(t)) for t in
              ('float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8',
               'bool')]
    # ``bytes``: protocol-2 pickles rebuild empty byte strings by calling it (harmless).
    return [HistoryBuffer, _reconstruct, scalar, np.ndarray, np.dtype, bytes, *dtypes]


_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getstate(self) -> dict:
    """``HistoryBuffer`` state without references to its built-in methods (see module doc)."""
    state = {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}
    custom = {k: v for k, v in self._statistics_methods.items() if k not in _DEFAULT_STATISTICS}
    if custom:
        state['statistics_methods'] = custom
    return state


def allow_checkpoint_globals() -> None:
    """Add :func:`checkpoint_safe_globals` to torch's process-wide allow-list.

    Called when ``mmunsup3d`` is imported so that MMEngine's own loaders (``runner.resume``,
    ``load_checkpoint``) work under torch >= 2.6 without unsafe unpickling.
    """
    from mmengine.logging import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


def safe_torch_load(path: str, map_location: Optional[Union[str, torch.device]] = 'cpu') -> Any:
    """``torch.load`` with ``weights_only=True`` and the MMEngine allow-list.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: the file references a global outside the allow-list (for
            example a pickled payload that would run code).
        RuntimeError: the file is not a readable torch checkpoint (truncated, corrupt).
    """
    import os.path as osp
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    try:
        # Not torch's ``safe_globals`` context manager: on exit it would also remove these
        # globals from the process-wide list that MMEngine's own loaders rely on.
        allow_checkpoint_globals()
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if 'Unsupported global' in msg or 'not an allowed global' in msg or \
                'weights_only' in msg:
            raise UnsafeCheckpointError(
                f'Refusing to load {path}: it references objects outside the checkpoint '
                f'allow-list (weights_only=True). Details: {msg.splitlines()[0]}') from e
        raise RuntimeError(f'Checkpoint {path} is corrupt or not a torch file: {e}') from e
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        raise RuntimeError(f'Checkpoint {path} is corrupt or truncated: {e}') from e
