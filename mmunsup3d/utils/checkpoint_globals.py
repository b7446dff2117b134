"""What a checkpoint may contain besides tensors, and guarded stand-ins for the risky parts.

``torch.load(weights_only=True)`` rebuilds tensors and plain containers and calls nothing else
unless the global is allow-listed. MMEngine checkpoints (``save_checkpoint``: ``meta`` with
``dataset_meta``, ``message_hub``, optimizer and scheduler state) and older ``torch.save``
files also hold NumPy arrays and scalars, ``HistoryBuffer`` objects, ``ConfigDict`` and sets.
Allowing those globals as they are would hand a file three dangerous capabilities, so each one
that can be misused is allow-listed through a guarded stand-in under the *same* global name
(torch's ``(callable, "module.name")`` form), and only for the duration of one load
(:func:`checkpoint_globals`): nothing is added to torch's process-wide list.

- ``numpy.core.multiarray._reconstruct`` (NumPy 1 and 2 spellings) builds only an *empty*
  :class:`_CheckedArray` (what NumPy's own pickles ask for; a non-empty one would expose
  uninitialised memory). Its ``__setstate__`` refuses object, structured and inconsistent
  dtypes before NumPy copies the data in: ``dtype.__setstate__`` trusts its input and can
  flag a float dtype as holding object pointers, which the array would then dereference.
  :func:`plain_values` turns every ``_CheckedArray`` into a plain ``ndarray`` view after the
  load and checks every dtype and scalar in the result once more.
- ``numpy.core.multiarray.scalar`` and ``numpy.dtype`` accept only plain numeric / string
  dtypes.
- ``builtins.bytes`` only without arguments (``b''`` in protocol-2 pickles).
- ``builtins.getattr`` (protocol-2 pickles reference ``HistoryBuffer.min`` as
  ``getattr(HistoryBuffer, 'min')``) answers only for MMEngine's built-in statistics methods.
- ``mmengine.logging.history_buffer.HistoryBuffer`` is :class:`_LoadedHistoryBuffer`, whose
  ``__setstate__`` accepts only the buffer's own fields and statistics methods that are
  MMEngine's or already registered in this process (the stock ``__setstate__`` copies a
  file's methods into the class-level table shared by every buffer of the process), then
  turns the object into a real ``HistoryBuffer``.
"""
import contextlib
import functools
import pickle
import threading
from typing import Any, Callable, Dict, Iterator, List, Tuple, Union

import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer

from .safe_pickle import dtype_problem

__all__ = ['checkpoint_safe_globals', 'checkpoint_globals', 'plain_values']

SafeGlobal = Union[Callable, Tuple[Callable, str]]

_MULTIARRAY = ('numpy.core.multiarray', 'numpy._core.multiarray')
_STATISTICS = ('min', 'max', 'current', 'mean')
_LOCK = threading.RLock()  # adding/removing torch's user globals is not thread-safe
try:
    from numpy._core.multiarray import scalar as _NUMPY_SCALAR
except ImportError:  # NumPy 1
    from numpy.core.multiarray import scalar as _NUMPY_SCALAR


def _refuse(what: str) -> None:
    raise pickle.UnpicklingError(f'Unsupported global: {what}')


class _CheckedArray(np.ndarray):
    """The array NumPy's pickles rebuild, with its dtype checked before the data is copied."""

    def __setstate__(self, state: Any) -> None:
        # ndarray state: (version, shape, dtype, is_fortran, data), or without the version.
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            _refuse('a NumPy array state that is not a 4- or 5-tuple')
        problem = dtype_problem(state[-3])
        if problem:
            _refuse(f'a NumPy array of {problem}')
        np.ndarray.__setstate__(self, state)


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """``numpy.core.multiarray._reconstruct`` for plain arrays; they start empty."""
    if subtype is not np.ndarray and subtype is not _CheckedArray:
        _refuse(f'_reconstruct of {subtype!r} (only numpy.ndarray)')
    if not isinstance(shape, tuple) or int(np.prod(shape)) != 0:
        _refuse(f'_reconstruct with shape {shape!r} (NumPy pickles start from an empty array)')
    return np.ndarray.__new__(_CheckedArray, shape, dtype)


def _scalar(dtype: Any, *args: Any) -> np.generic:
    """``numpy.core.multiarray.scalar`` for plain dtypes only."""
    problem = dtype_problem(dtype)
    if problem:
        _refuse(f'a NumPy scalar of {problem}')
    return _NUMPY_SCALAR(dtype, *args)


def _dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """``numpy.dtype`` from a type string (what NumPy's pickles pass), plain kinds only."""
    if not isinstance(spec, (str, bytes)):
        _refuse(f'numpy.dtype({type(spec).__name__}) (only type strings)')
    dtype = np.dtype(spec, align=bool(align), copy=bool(copy))
    problem = dtype_problem(dtype)
    if problem:
        _refuse(f'a NumPy {problem}')
    return dtype


def _getattr(obj: Any, name: Any) -> Any:
    """``getattr`` restricted to ``HistoryBuffer``'s built-in statistics methods."""
    if obj in (HistoryBuffer, _LoadedHistoryBuffer) and name in _STATISTICS:
        return getattr(HistoryBuffer, name)
    _refuse(f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}) (only '
            'HistoryBuffer statistics methods)')


def _bytes(*args: Any) -> bytes:
    """``bytes()``: protocol-2 pickles write ``b''`` as a call without arguments.

    Any argument is refused (``bytes(10 ** 12)`` would allocate a terabyte).
    """
    if args:
        _refuse('bytes() with arguments (only the empty byte string)')
    return b''


@functools.lru_cache(maxsize=1)
def _history_buffer_fields() -> frozenset:
    return frozenset(HistoryBuffer().__dict__)


class _LoadedHistoryBuffer(HistoryBuffer):
    """Stand-in for ``HistoryBuffer`` while unpickling; becomes a ``HistoryBuffer``."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            _refuse(f'HistoryBuffer state of type {type(state).__name__}')
        state = dict(state)
        methods = state.pop('statistics_methods', {})
        if not isinstance(methods, dict):
            _refuse('HistoryBuffer statistics_methods that are not a dict')
        for name, method in methods.items():
            known = HistoryBuffer._statistics_methods.get(name)
            default = getattr(HistoryBuffer, name, None) if name in _STATISTICS else None
            if method is not known and method is not default:
                _refuse(f'HistoryBuffer statistics method {name!r} = {method!r} (only '
                        "MMEngine's built-in ones or ones registered in this process)")
        extra = sorted(set(state) - _history_buffer_fields())
        if extra:
            _refuse(f'HistoryBuffer state fields {extra}')
        self._set_default_statistics()
        self.__dict__.update(state)
        self.__class__ = HistoryBuffer


def checkpoint_safe_globals() -> List[SafeGlobal]:
    """The globals a checkpoint may name, as ``(object, "module.name")`` pairs (see module doc).

    Plain objects are the NumPy DType classes (torch only builds allow-listed types; a dtype
    whose state a file corrupted is refused by :class:`_CheckedArray` before any array uses it,
    and by :func:`plain_values` anywhere else), ``ConfigDict`` (rebuilt by calling it with a dict), ``frozenset`` and
    :class:`_CheckedArray` (so torch lets it be built).
    """
    guarded: List[SafeGlobal] = []
    for module in _MULTIARRAY:
        guarded += [(_reconstruct, f'{module}._reconstruct'), (_scalar, f'{module}.scalar')]
    guarded += [(_dtype, 'numpy.dtype'), (np.ndarray, 'numpy.ndarray'),
                (_getattr, 'builtins.getattr'), (_bytes, 'builtins.bytes'),
                (_LoadedHistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
                (ConfigDict, 'mmengine.config.config.ConfigDict'),
                (frozenset, 'builtins.frozenset'),
                (_CheckedArray, f'{__name__}._CheckedArray')]
    dtypes = {type(np.dtype(c)) for c in '?bBhHiIlLqQefdgFDGSU'}
    guarded += [(t, f'numpy.dtypes.{t.__name__}') for t in sorted(dtypes, key=str)]
    return guarded


@contextlib.contextmanager
def checkpoint_globals() -> Iterator[None]:
    """Allow :func:`checkpoint_safe_globals` for the loads inside the block only.

    Entries the process had already allow-listed itself are left as they are: only what this
    block added is removed again.
    """
    with _LOCK:
        before = set(torch.serialization.get_safe_globals())
        added = [g for g in checkpoint_safe_globals() if g not in before]
        with torch.serialization.safe_globals(added):
            yield


#: Deeper nesting than any checkpoint has; a file that nests deeper is refused.
MAX_DEPTH = 100


def _checked_leaf(value: Any, where: str) -> Any:
    """``value`` (a plain ``ndarray`` view for a :class:`_CheckedArray`), its dtype checked."""
    if isinstance(value, np.dtype):
        problem = dtype_problem(value)
    elif isinstance(value, (np.ndarray, np.generic)):
        problem = dtype_problem(value.dtype)
    else:
        return value
    if problem:
        _refuse(f'{problem} at {where}')
    return value.view(np.ndarray) if type(value) is _CheckedArray else value


def _plain(value: Any, where: str, depth: int, seen: Dict[int, Any]) -> Any:
    if id(value) in seen:
        return seen[id(value)]
    if depth > MAX_DEPTH:
        _refuse(f'containers nested deeper than {MAX_DEPTH} levels at {where}')
    seen[id(value)] = value
    if isinstance(value, dict):
        for key, child in list(value.items()):
            value[key] = _plain(child, f'{where}[{key!r}]', depth + 1, seen)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            value[i] = _plain(child, f'{where}[{i}]', depth + 1, seen)
    elif type(value) is tuple:
        value = tuple(_plain(c, f'{where}[{i}]', depth + 1, seen) for i, c in enumerate(value))
    elif isinstance(value, HistoryBuffer):
        for key, child in list(vars(value).items()):
            setattr(value, key, _plain(child, f'{where}.{key}', depth + 1, seen))
    else:
        value = _checked_leaf(value, where)
    seen[id(value)] = value
    return value


def plain_values(obj: Any) -> Any:
    """``obj`` with every :class:`_CheckedArray` replaced by a plain ``ndarray`` view.

    Walks dicts, lists, tuples and ``HistoryBuffer`` fields (each object once) and checks every
    NumPy dtype, array and scalar on the way.

    Raises:
        pickle.UnpicklingError: a dtype outside the allow-list (object, structured,
            inconsistent), or containers nested deeper than :data:`MAX_DEPTH`.
    """
    return _plain(obj, 'checkpoint', 0, {})
