"""Restricted unpickling of data files (Human3.6M's ``cameras.pkl`` and the like).

``pickle.load`` runs whatever a file asks for: a ``cameras.pkl`` whose pickle names
``os.system`` runs a shell command the moment it is loaded (MMPose loads it with
``mmengine.load``, i.e. plain ``pickle.load``). :func:`safe_load` unpickles only plain data:

- Python ``dict``, ``list``, ``tuple``, ``set``/``frozenset``, ``str``, ``bytes``, ``int``,
  ``float``, ``bool``, ``None`` (all built by pickle opcodes, no global needed), ``complex``;
- NumPy arrays, scalars and dtypes of the kinds bool, (unsigned) integer, float, complex,
  ``bytes_`` and ``str_``; and the ``numpy.dtypes.*DType`` classes of those kinds as values.

The globals a file may name are exactly those NumPy's and Python's own pickling of such values
references (check with ``pickletools.dis``): ``numpy.core.multiarray._reconstruct`` /
``numpy._core.multiarray._reconstruct`` with ``numpy.ndarray`` (protocols 0-4),
``numpy.core.numeric._frombuffer`` / ``numpy._core.numeric._frombuffer`` (protocol 5),
``numpy.dtype``, ``numpy.core.multiarray.scalar`` / ``numpy._core.multiarray.scalar``,
``numpy.dtypes.<Kind>DType`` (numpy 2, when a DType class itself is pickled), and for protocols
0-2 (which write ``bytes`` as ``_codecs.encode(text, 'latin1')`` and ``b''`` as ``bytes()``)
``_codecs.encode`` with the ``latin1`` codec and ``builtins.bytes`` with no argument. Anything
else (``eval``, ``getattr``, ``os.system``, ``builtins.open``, any class) is refused by
:meth:`RestrictedUnpickler.find_class` before it is imported, with an
:class:`UnsafePickleError` naming the file and the global.

Allowing a global is not enough to be safe; what a pickle *does* with it matters too:

- ``REDUCE`` (call) is allowed only on the guarded factories above, never on a class
  (``numpy.ndarray(shape, 'O')``, ``numpy.dtypes.*DType()``); ``INST``/``OBJ``/``NEWOBJ``
  (instantiate a class) and persistent ids are refused.
- ``BUILD`` (``__setstate__``) is allowed only once, on an array made by ``_reconstruct`` or a
  dtype made by ``numpy.dtype`` that nothing uses yet. NumPy's ``dtype.__setstate__`` trusts its
  input: it can give a dtype object references (a void dtype with the "has object" flag, or an
  object field) or an item size / field offsets that do not match its type, and an array
  already built with that dtype would then read pointers or memory out of bounds. So dtypes
  are restricted to the plain kinds above (no object, void/structured or sub-array dtypes) and
  each built dtype must equal the canonical dtype of its type string.
- An array made by ``_reconstruct`` has no data until its BUILD: its memory is uninitialised
  (heap garbage). Such an array may not be read before it is built (as an argument of a call
  or inside a BUILD state, e.g. as a shape), and a load that ends with an array never built is
  refused.
- Object arrays are refused at every entry point (they would hold arbitrary objects), and the
  loaded value is walked once more to check that it holds only the types above.
- Sizes are checked before anything is allocated: a length field (a protocol-4 frame, a
  ``bytes``/``str``/``bytearray`` length) or a ``_reconstruct`` array larger than what the file
  can still hold is refused (for a stream whose size is unknown, the cap is
  :data:`MAX_STREAM_BYTES`), instead of a ``MemoryError`` naming nothing.

This needs the pure-Python unpickler (``pickle._Unpickler``, CPython's reference
implementation), whose opcode table can be guarded; the C unpickler only lets one hook
``find_class``. It is slower, which does not matter for camera files (tens of KB).

NumPy files are the other way a data file can carry a pickle (an object array is stored as a
pickle inside the ``.npy``). :func:`load_npy` and :func:`npz_array` read them with
``allow_pickle=False`` and turn NumPy's refusal into an error naming the file and the key;
:func:`open_npz` opens an ``.npz`` the same way. A truncated or corrupt NumPy file is a
``ValueError`` naming the file (and key), never a bare ``BadZipFile`` / ``EOFError``.
"""
import _compat_pickle
import importlib
import io
import os
import pickle
import struct
import sys
import zipfile
import zlib
from typing import Any, BinaryIO, Dict, Optional, Tuple, Union

import numpy as np

__all__ = [
    'UnsafePickleError', 'RestrictedUnpickler', 'safe_load', 'safe_loads', 'load_npy',
    'npz_array', 'open_npz', 'dtype_problem', 'MAX_STREAM_BYTES'
]

# NumPy dtype kinds a pickle may contain: bool, int, uint, float, complex, bytes_, str_.
_KINDS = 'biufcSU'
# Type characters of those kinds, to find their numpy 2 DType classes.
_TYPE_CHARS = '?bBhHiIlLqQnNpPefdgFDGSU'
# The longest read of an opcode's fixed-size argument (an 8-byte length or frame size).
_FIXED_READ = 8
# Largest read from a stream whose size cannot be measured (not seekable). Files on disk and
# ``bytes`` are bounded by their actual size instead.
MAX_STREAM_BYTES = 1 << 30
_ALLOWED_TEXT = ('dict, list, tuple, set, str, bytes, numbers, bool, None and NumPy arrays, '
                 'scalars and dtypes of kinds bool/int/uint/float/complex/bytes/str')


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something outside the allow-list; nothing of it was run.

    Attributes:
        refused: what was refused, e.g. ``'global "posix.system"'``.
    """

    def __init__(self, message: str, refused: str) -> None:
        super().__init__(message)
        self.refused = refused


def _numpy_module(*names: str):
    """The first importable of ``names`` (numpy 2 ``numpy._core``, else numpy 1 ``numpy.core``).

    ``numpy._core`` is tried first because importing ``numpy.core`` warns under numpy 2.
    """
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(f'None of {names} can be imported')


_multiarray = _numpy_module('numpy._core.multiarray', 'numpy.core.multiarray')
_numeric = _numpy_module('numpy._core.numeric', 'numpy.core.numeric')
_allowed_dtype_classes = {type(np.dtype(c)) for c in _TYPE_CHARS}


def dtype_problem(dtype: Any) -> Optional[str]:
    """Why ``dtype`` may not appear in a pickle, or ``None`` if it may."""
    if not isinstance(dtype, np.dtype):
        return f'a dtype argument of type {type(dtype).__name__}'
    if dtype.hasobject:
        return f'object dtype {dtype} (object arrays would unpickle arbitrary Python objects)'
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        return f'dtype {dtype} (only plain bool/int/uint/float/complex/bytes/str dtypes)'
    # dtype.__setstate__ can leave a dtype whose size or flags do not match its type string
    # (e.g. a 5-byte "<U1"); such a dtype would read out of bounds.
    canonical = np.dtype(dtype.str)
    if (canonical != dtype or canonical.itemsize != dtype.itemsize
            or canonical.alignment != dtype.alignment or canonical.flags != dtype.flags):
        return f'inconsistent dtype {dtype!r} (item size {dtype.itemsize}, flags {dtype.flags})'
    return None


def _bytes_left(file: BinaryIO) -> int:
    """How many bytes ``file`` holds from its position on (:data:`MAX_STREAM_BYTES` if it
    cannot seek)."""
    try:
        pos = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(pos)
    except (AttributeError, OSError, ValueError):
        return MAX_STREAM_BYTES
    return max(end - pos, 0)


def _claimed_nbytes(shape: Any, itemsize: int) -> Optional[int]:
    """Bytes of an array of ``shape``, or ``None`` if ``shape`` is not a tuple/list of integers
    (or one integer)."""
    dims = shape if type(shape) in (tuple, list) else (shape, )
    nbytes = itemsize
    for dim in dims:
        if not isinstance(dim, (int, np.integer)):
            return None
        nbytes *= max(int(dim), 0)
    return nbytes


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """An unpickler that builds only plain data and numeric NumPy values (see module doc).

    Args:
        file: binary file object to read the pickle from.
        name: how errors name the source (a file path).
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, file: BinaryIO, name: str = '<pickle>') -> None:
        # Python 3 defaults (ASCII for Python 2 ``str``), the same as ``pickle.load``.
        super().__init__(file)
        self.name = name
        # Objects made by a guarded factory and not yet built or used, by id (the dict keeps
        # them alive, so no id is reused while it is listed).
        self._unbuilt: Dict[int, Any] = {}
        # Bound once: REDUCE recognises the guarded factories by identity.
        reconstruct, frombuffer, scalar = self._reconstruct, self._frombuffer, self._scalar
        dtype, encode, empty_bytes, complex_ = self._dtype, self._encode, self._bytes, \
            self._complex
        self._globals: Dict[Tuple[str, str], Any] = {
            ('numpy', 'ndarray'): np.ndarray,  # a value only (the subtype of _reconstruct)
            ('numpy', 'dtype'): dtype,
            ('_codecs', 'encode'): encode,
            ('builtins', 'bytes'): empty_bytes,
            ('builtins', 'complex'): complex_,
        }
        for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            self._globals[(mod, '_reconstruct')] = reconstruct
            self._globals[(mod, 'scalar')] = scalar
        for mod in ('numpy.core.numeric', 'numpy._core.numeric'):
            self._globals[(mod, '_frombuffer')] = frombuffer
        self._callables = {id(f): f for f in (reconstruct, frombuffer, scalar, dtype, encode,
                                               empty_bytes, complex_)}
        # Every read from the file goes through the size check (see _read_file).
        self._max_read = _bytes_left(file)
        self._raw_read = file.read
        self._file_read = self._read_file

    # ----------------------------------------------------------------- refusals
    def refuse(self, what: str) -> UnsafePickleError:
        """The error for refusing ``what`` (raise it)."""
        return UnsafePickleError(
            f'{self.name}: refusing to unpickle {what}; only {_ALLOWED_TEXT} are allowed. '
            'Nothing from the file was executed. Regenerate the file from trusted data if it '
            'is yours.', what)

    def too_large(self, what: str, nbytes: int) -> UnsafePickleError:
        """The error for ``what`` claiming ``nbytes`` bytes, more than the file holds."""
        return UnsafePickleError(
            f'{self.name}: refusing to unpickle {what} of {nbytes} bytes: the file holds only '
            f'{self._max_read} bytes (a truncated file or a crafted length). Nothing was '
            'allocated or executed.', f'{what} of {nbytes} bytes')

    def _check_size(self, nbytes: int, what: str) -> None:
        # Before allocating: a length the file cannot back is a lie, and believing it would
        # end in a MemoryError that names nothing.
        if nbytes > self._max_read:
            raise self.too_large(what, nbytes)

    def _read_file(self, n: int) -> bytes:
        """``file.read(n)`` after checking ``n`` against what the file holds.

        Reads of up to 8 bytes are an opcode or its fixed-size argument: at the end of a
        truncated file pickle itself reports them (``EOFError``). Longer ones are the bytes a
        length field announced (``BINBYTES8``, ``BINUNICODE8``, ...), which a file shorter
        than that cannot hold.
        """
        if n > _FIXED_READ:
            self._check_size(n, 'a read')
        return self._raw_read(n)

    def _check_built(self, value: Any, where: str) -> None:
        """Refuse ``value`` (or an item or sub-item of it) if it is an array not yet built.

        Two levels cover what the factories and ``ndarray.__setstate__`` read (an argument, a
        shape's dimensions); longer containers than NumPy's 64 dimensions are not descended
        into (NumPy refuses such shapes itself), so crafted streams cannot make this slow.
        """
        items = [value]
        if type(value) in (tuple, list):
            items.extend(value)
            for item in value:
                if type(item) in (tuple, list) and len(item) <= 64:
                    items.extend(item)
        for item in items:
            if isinstance(item, np.ndarray) and id(item) in self._unbuilt:
                raise self.refuse(f'an array read before its BUILD ({where}): its memory is '
                                  'uninitialised')

    def persistent_load(self, pid: Any) -> Any:
        raise self.refuse(f'persistent id {pid!r}')

    def find_class(self, module: str, name: str) -> Any:
        """Look ``module.name`` up in the allow-list; never imports anything."""
        sys.audit('pickle.find_class', module, name)
        if self.proto < 3 and self.fix_imports:  # Python 2 names, as pickle itself maps them
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        found = self._globals.get((module, name))
        if found is None and module == 'numpy.dtypes' and name.endswith('DType'):
            cls = getattr(np, 'dtypes', None) and getattr(np.dtypes, name, None)
            if cls in _allowed_dtype_classes:
                found = cls  # a value: calling it is refused in REDUCE
        if found is None:
            raise self.refuse(f'global "{module}.{name}"')
        return found

    # ----------------------------------------------------------------- guarded opcodes
    def _load_reduce(self) -> None:
        func = self.stack[-2]
        if id(func) not in self._callables:
            name = f'{getattr(func, "__module__", "?")}.{getattr(func, "__qualname__", func)}'
            raise self.refuse(f'a call of "{name}"')
        self._check_built(self.stack[-1], 'an argument of a call')
        pickle._Unpickler.load_reduce(self)  # type: ignore[attr-defined]

    def _load_build(self) -> None:
        state, inst = self.stack[-1], self.stack[-2]
        # Before ``inst`` leaves the unbuilt list: a state that holds it would read it.
        self._check_built(state, 'inside a BUILD state')
        if self._unbuilt.pop(id(inst), None) is None:
            what = f'dtype {inst}' if isinstance(inst, np.dtype) else type(inst).__name__
            raise self.refuse(f'a __setstate__ of {what} (allowed only once, on a new array '
                              'or dtype that nothing uses yet)')
        if isinstance(inst, np.ndarray):
            if not (isinstance(state, tuple) and len(state) == 5):
                raise self.refuse(f'an array state of type {type(state).__name__}')
            self._use_dtype(state[2])
            if not isinstance(state[4], (bytes, bytearray, str)):
                # Object arrays store a list of objects; plain arrays their raw bytes.
                raise self.refuse(f'array data of type {type(state[4]).__name__}')
        inst.__setstate__(state)
        self.stack.pop()
        problem = dtype_problem(inst.dtype if isinstance(inst, np.ndarray) else inst)
        if problem is not None:
            raise self.refuse(problem)

    def _refuse_instantiation(self) -> None:
        raise self.refuse('an instance of a class (INST/OBJ/NEWOBJ opcodes)')

    def _load_frame(self) -> None:
        """Protocol 4's FRAME, with its size checked before the frame is read."""
        frame_size, = struct.unpack('<Q', self.read(8))
        self._check_size(frame_size, 'a frame')
        self._unframer.load_frame(frame_size)

    def _load_bytearray8(self) -> None:
        """Protocol 5's BYTEARRAY8, with its size checked before the buffer is allocated."""
        size, = struct.unpack('<Q', self.read(8))
        self._check_size(size, 'a bytearray')
        data = bytearray(size)
        self.readinto(data)
        self.append(data)

    dispatch[pickle.REDUCE[0]] = _load_reduce
    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.FRAME[0]] = _load_frame
    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8
    for _op in (pickle.INST, pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX):
        dispatch[_op[0]] = _refuse_instantiation
    del _op

    # ----------------------------------------------------------------- guarded factories
    def _use_dtype(self, dtype: Any) -> np.dtype:
        """Check a dtype an array is made with; it can no longer be built (changed) after."""
        if isinstance(dtype, (str, bytes)):
            try:
                dtype = np.dtype(dtype)
            except TypeError as e:
                raise self.refuse(f'dtype {dtype!r} ({e})') from None
        problem = dtype_problem(dtype)
        if problem is not None:
            raise self.refuse(problem)
        self._unbuilt.pop(id(dtype), None)
        return dtype

    def _dtype(self, obj: Any, align: Any = False, copy: Any = False) -> np.dtype:
        """``numpy.dtype(obj, align, copy)`` for a type string of an allowed kind."""
        if not isinstance(obj, (str, bytes)):
            raise self.refuse(f'numpy.dtype of a {type(obj).__name__} (only type strings)')
        if not all(type(v) in (bool, int) for v in (align, copy)):
            raise self.refuse('numpy.dtype with a non-bool align or copy')
        try:
            # Always a new object (NumPy pickles with copy=True anyway): BUILD must never
            # change NumPy's shared builtin dtypes.
            dtype = np.dtype(obj, bool(align), True)
        except TypeError as e:
            raise self.refuse(f'dtype {obj!r} ({e})') from None
        problem = dtype_problem(dtype)
        if problem is not None:
            raise self.refuse(problem)
        self._unbuilt[id(dtype)] = dtype
        return dtype

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        """NumPy's ``_reconstruct`` for plain ``numpy.ndarray`` (its data come in BUILD)."""
        if subtype is not np.ndarray:
            raise self.refuse(f'an array of class {subtype!r} (only numpy.ndarray)')
        dtype = self._use_dtype(dtype)
        # NumPy allocates the (uninitialised) array here; its data must come from the file.
        nbytes = _claimed_nbytes(shape, dtype.itemsize)
        if nbytes is None:  # NumPy pickles pass (0,); anything else it would index itself
            raise self.refuse(f'an array shape of type {type(shape).__name__} (only integers)')
        self._check_size(nbytes, f'an array of shape {shape!r} and dtype {dtype}')
        arr = _multiarray._reconstruct(np.ndarray, shape, dtype)
        self._unbuilt[id(arr)] = arr
        return arr

    def _frombuffer(self, buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        """NumPy's protocol-5 ``_frombuffer`` for an allowed dtype."""
        if not isinstance(buf, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
            raise self.refuse(f'array data of type {type(buf).__name__}')
        return _numeric._frombuffer(buf, self._use_dtype(dtype), shape, order)

    def _scalar(self, dtype: Any, obj: Any = None) -> np.generic:
        """NumPy's ``scalar`` (a NumPy scalar from its dtype and raw bytes)."""
        dtype = self._use_dtype(dtype)
        if not isinstance(obj, (bytes, str)):
            raise self.refuse(f'scalar data of type {type(obj).__name__}')
        return _multiarray.scalar(dtype, obj)

    def _encode(self, obj: Any, encoding: str = 'utf-8', errors: str = 'strict') -> bytes:
        """``_codecs.encode(text, 'latin1')``: how protocols 0-2 write ``bytes``."""
        if not isinstance(obj, str) or encoding not in ('latin1', 'latin-1') or \
                errors != 'strict':
            raise self.refuse(f'_codecs.encode with {type(obj).__name__}, {encoding!r} (only '
                              "str to bytes with 'latin1')")
        return obj.encode('latin1')

    def _bytes(self, *args: Any) -> bytes:
        """``bytes()``: how protocols 0-2 write ``b''``."""
        if args:
            raise self.refuse('bytes() with arguments')
        return b''

    def _complex(self, real: Any = 0.0, imag: Any = 0.0) -> complex:
        """``complex(real, imag)``: how protocols 2-5 write a Python complex."""
        if not all(type(v) in (int, float) for v in (real, imag)):
            raise self.refuse('complex() of non-numbers')
        return complex(real, imag)

    # ----------------------------------------------------------------- loading
    def load(self) -> Any:
        try:
            value = super().load()
            # NumPy builds every array it pickles; one never built holds heap garbage.
            if any(isinstance(obj, np.ndarray) for obj in self._unbuilt.values()):
                raise self.refuse('an array that was never built (numpy _reconstruct without '
                                  'BUILD): its memory is uninitialised')
        finally:
            self._unbuilt.clear()
        self._check_value(value)
        return value

    def _check_value(self, value: Any) -> None:
        """Walk the loaded value: only allowed types (a last check; cycles are fine)."""
        seen = set()
        todo = [value]
        while todo:
            obj = todo.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            kind = type(obj)
            if kind is dict:
                todo.extend(obj.keys())
                todo.extend(obj.values())
            elif kind in (list, tuple, set, frozenset):
                todo.extend(obj)
            elif kind in (str, bytes, bytearray, int, float, complex, bool, type(None)):
                pass
            elif kind is np.ndarray or isinstance(obj, np.generic):
                problem = dtype_problem(obj.dtype)
                if problem is not None:
                    raise self.refuse(problem)
            elif isinstance(obj, np.dtype):
                problem = dtype_problem(obj)
                if problem is not None:
                    raise self.refuse(problem)
            elif isinstance(obj, type) and (obj is np.ndarray or obj in _allowed_dtype_classes):
                pass
            else:
                raise self.refuse(f'a value of type {kind.__module__}.{kind.__qualname__}')


def safe_loads(data: bytes, name: str = '<bytes>') -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (see :func:`safe_load`)."""
    return safe_load(io.BytesIO(data), name=name)


def safe_load(file: Union[str, os.PathLike, BinaryIO], name: Optional[str] = None) -> Any:
    """Unpickle a data file, refusing anything but plain data (see the module doc).

    Args:
        file: path or binary file object.
        name: how errors name the file (default: the path, or the file object's ``name``).

    Returns:
        The unpickled value.

    Raises:
        UnsafePickleError: the pickle asks for a global, call or object outside the
            allow-list (nothing of it was executed).
        pickle.UnpicklingError: the file is not a (complete) pickle.
        OSError: the file cannot be read.
    """
    if isinstance(file, (str, os.PathLike)):
        path = os.fspath(file)
        with open(path, 'rb') as f:
            return safe_load(f, name=path if name is None else name)
    name = name if name is not None else str(getattr(file, 'name', '<pickle>'))
    try:
        return RestrictedUnpickler(file, name=name).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, UnicodeDecodeError) as e:
        # A malformed stream (truncated, not a pickle, a bad NumPy state): say which file.
        raise pickle.UnpicklingError(
            f'{name}: not a valid pickle of plain data ({type(e).__name__}: {e})') from e



# ----------------------------------------------------------------------------- NumPy files
_OBJECT_ARRAY_HINT = ('object arrays are refused because loading one unpickles arbitrary '
                      'Python objects (allow_pickle=False); store numeric or fixed-width string '
                      'arrays instead (e.g. np.asarray(names, dtype=str))')


# What a truncated or damaged NumPy file raises while it is opened or read (besides NumPy's own
# ValueError): the zip layer, a short read, a damaged deflate stream.
_DAMAGED_FILE_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, struct.error)


def _npy_error(name: str, what: str, exc: Exception) -> ValueError:
    """A ``ValueError`` naming the file (and key) of NumPy's refusal or read error."""
    # NumPy's refusal of object data says "allow_pickle" (object arrays in .npy/.npz) or
    # "pickled" (a plain pickle under a .npy name).
    if isinstance(exc, ValueError) and ('allow_pickle' in str(exc) or 'pickled' in str(exc)):
        return ValueError(f'{name}: {what} is an object array (or a pickle): '
                          f'{_OBJECT_ARRAY_HINT}')
    if isinstance(exc, _DAMAGED_FILE_ERRORS):
        return ValueError(f'{name}: cannot read {what}: the file is truncated or corrupt '
                          f'({type(exc).__name__}: {exc}); re-create or re-download it')
    return ValueError(f'{name}: cannot read {what} ({exc})')


def load_npy(file: Union[str, os.PathLike, BinaryIO], name: Optional[str] = None) -> np.ndarray:
    """Read one ``.npy`` array without ever unpickling (``allow_pickle=False``).

    Args:
        file: path or binary file object of a ``.npy`` file.
        name: how errors name the file (default: the path).

    Returns:
        The array.

    Raises:
        ValueError: the file holds an object array or a pickle, is an ``.npz`` archive, is
            not a NumPy file, or is truncated or corrupt; the message names the file.
    """
    name = name if name is not None else str(getattr(file, 'name', file))
    try:
        arr = np.load(file, allow_pickle=False)
    except (ValueError, *_DAMAGED_FILE_ERRORS) as e:
        raise _npy_error(name, 'the array', e) from None
    if not isinstance(arr, np.ndarray):  # an .npz archive
        arr.close()
        raise ValueError(f'{name}: expected one .npy array, got an .npz archive with '
                         f'{sorted(arr.files)}')
    return arr


def open_npz(file: Union[str, os.PathLike, BinaryIO], name: Optional[str] = None) -> Any:
    """Open an ``.npz`` archive without ever unpickling (``allow_pickle=False``).

    Read its arrays with :func:`npz_array`; close it (or use it as a context manager).

    Args:
        file: path or binary file object of an ``.npz`` archive.
        name: how errors name the file (default: the path).

    Returns:
        The ``numpy.lib.npyio.NpzFile``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: ``<name> is not an .npz archive (...)``: a pickle, a single ``.npy``
            array, another kind of file, or a truncated or corrupt archive.
    """
    name = name if name is not None else str(getattr(file, 'name', file))
    try:
        npz = np.load(file, allow_pickle=False)
    except (ValueError, *_DAMAGED_FILE_ERRORS) as e:
        damaged = isinstance(e, _DAMAGED_FILE_ERRORS)
        raise ValueError(f'{name} is not an .npz archive ('
                         + ('truncated or corrupt: ' if damaged else '')
                         + f'{type(e).__name__}: {e})') from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f'{name} is not an .npz archive (it holds a single .npy array)')
    return npz


def npz_array(npz: Any, key: str, name: str) -> np.ndarray:
    """``npz[key]`` of an archive opened with ``allow_pickle=False``, with clear errors.

    Args:
        npz: ``numpy.lib.npyio.NpzFile`` (``np.load`` of an ``.npz``, or :func:`open_npz`).
        key: array name.
        name: how errors name the archive (its path).

    Raises:
        KeyError: no such key (the message lists the archive's keys).
        ValueError: the array is an object array (refused), or cannot be read (e.g. a
            truncated or corrupt archive); the message names the archive and the key.
    """
    if getattr(npz, 'allow_pickle', False):  # would unpickle object arrays: a caller's bug
        raise ValueError(f'{name}: npz_array needs an archive opened with allow_pickle=False')
    if key not in npz.files:
        raise KeyError(f'{name} has no array "{key}" (has {sorted(npz.files)})')
    try:
        return npz[key]
    except (ValueError, *_DAMAGED_FILE_ERRORS) as e:
        raise _npy_error(name, f'array "{key}"', e) from None
