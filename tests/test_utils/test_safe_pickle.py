"""The restricted unpickler alone: what round-trips, what is refused, and that refused
payloads never run."""
import builtins
import os
import pickle
import struct

import numpy as np
import pytest

from mmunsup3d.utils.safe_pickle import (UnsafePickleError, load_npy, npz_array, open_npz,
                                         safe_load, safe_loads)

PROTOCOLS = list(range(pickle.HIGHEST_PROTOCOL + 1))


class Payload:
    """Unpickles as ``func(*args)`` (what a malicious file does)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class Custom:
    """An ordinary class: its instances are not plain data."""

    def __init__(self):
        self.value = 1


def _global_name(obj) -> str:
    return f'{obj.__module__}.{obj.__qualname__}'


def _assert_same(a, b, where='value'):
    """Same types all the way down, arrays equal in dtype, shape, order and values."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _assert_same(a[key], b[key], f'{where}[{key!r}]')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{where}[{i}]')
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.dtype.str == b.dtype.str, where
        assert a.shape == b.shape and a.flags.f_contiguous == b.flags.f_contiguous, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a == b, where
    else:
        assert a == b, where


def _camera_like(protocol: int) -> dict:
    """Everything MMPose's cameras.pkl holds, plus the other allowed types."""
    value = {
        ('S1', '54138969'): {
            'R': np.eye(3), 'T': np.arange(3.0).reshape(3, 1), 'c': np.ones((2, 1), np.float32),
            'k': np.array([[-0.2], [0.24], [-0.003]]), 'w': 1000, 'h': 1002,
            'name': 'camera1', 'id': '54138969',
        },
        'arrays': [np.arange(6, dtype='>i4').reshape(2, 3), np.asfortranarray(np.eye(2)),
                   np.array(['ab', 'c']), np.array([b'xy']), np.array([True, False]),
                   np.zeros((0, 3), np.uint8), np.array(2.5), np.array([1 + 2j])],
        'scalars': (np.float32(1.5), np.int64(-3), np.bool_(True), np.str_('s')),
        'python': (1, -2 ** 70, 0.25, 1 - 2j, True, None, 'text', b'raw', b''),
        'dtypes': [np.dtype('<f4'), np.dtype('>i8'), np.dtype('U7'), np.dtype('S2')],
        'dtype_class': type(np.dtype('float64')),
    }
    if protocol >= 4:  # sets have opcodes from protocol 4 (before, they call builtins.set)
        value['sets'] = ({1, 2}, frozenset({'a'}))
    return value


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_allowed_types_round_trip(protocol):
    data = pickle.dumps(_camera_like(protocol), protocol=protocol)
    # Equal to what pickle itself loads, type for type (pickle is the reference: NumPy's
    # protocol 0-4 pickles, for one, load a big-endian array as native-endian).
    ours = safe_loads(data)
    _assert_same(ours, pickle.loads(data))
    np.testing.assert_array_equal(ours['arrays'][0], np.arange(6).reshape(2, 3))
    assert ours[('S1', '54138969')]['name'] == 'camera1'


def test_numpy1_module_names_accepted():
    """numpy 1 pickles name ``numpy.core.multiarray``; numpy 2 ``numpy._core.multiarray``."""
    value = {'R': np.eye(3), 's': np.float64(2.0)}
    data = pickle.dumps(value, protocol=2)
    assert b'numpy._core.multiarray' in data  # text opcodes: the rename keeps the stream valid
    old = data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    _assert_same(safe_loads(old), value)


def test_load_from_path_and_file_object(tmp_path):
    path = tmp_path / 'cams.pkl'
    path.write_bytes(pickle.dumps({'a': np.ones(2)}))
    np.testing.assert_array_equal(safe_load(str(path))['a'], np.ones(2))
    with open(path, 'rb') as f:
        np.testing.assert_array_equal(safe_load(f)['a'], np.ones(2))


# ----------------------------------------------------------------------------- refusals
def _payloads(marker):
    """(payload, refused global) pairs; each would create ``marker`` if it ran."""
    return [
        (Payload(os.system, f'touch {marker}'), _global_name(os.system)),
        (Payload(builtins.open, str(marker), 'w'), _global_name(builtins.open)),
        (Payload(builtins.eval, f'open({str(marker)!r}, "w")'), 'builtins.eval'),
        (Payload(builtins.exec, f'open({str(marker)!r}, "w")'), 'builtins.exec'),
        (Payload(getattr, 'text', 'upper'), 'builtins.getattr'),
        (Custom(), _global_name(Custom)),
        (Custom, _global_name(Custom)),  # a class itself, not only instances
    ]


@pytest.mark.parametrize('protocol', [0, 2, 4, 5])
@pytest.mark.parametrize('case', range(7))
def test_disallowed_globals_refused_and_not_run(tmp_path, protocol, case):
    marker = tmp_path / 'MARKER'
    payload, refused = _payloads(marker)[case]
    if isinstance(payload, Custom) and protocol < 2:  # instances of plain classes, before
        refused = 'copyreg._reconstructor'          # protocol 2, are made by this function
    data = pickle.dumps({'cam': [np.eye(3), payload]}, protocol=protocol)
    assert not marker.exists()
    path = tmp_path / 'cameras.pkl'
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError) as info:
        safe_load(str(path))
    assert str(path) in str(info.value) and f'global "{refused}"' in str(info.value)
    assert info.value.refused == f'global "{refused}"'
    assert 'Nothing from the file was executed' in str(info.value)
    assert not marker.exists()
    assert sorted(os.listdir(tmp_path)) == ['cameras.pkl']


@pytest.mark.parametrize('protocol', [0, 2, 4, 5])
@pytest.mark.parametrize('value, refused', [
    (np.array([1, 'a', None], dtype=object), 'object dtype'),
    (np.zeros(2, dtype=[('a', 'f8'), ('b', 'O')]), 'dtype |V16'),  # refused as structured
    (np.dtype('O'), 'object dtype'),
    (np.zeros(2, dtype=[('a', 'f8'), ('b', 'i4')]), 'dtype |V12'),  # structured: not needed
    (np.zeros(2, 'V8'), 'dtype |V8'),
])
def test_object_and_structured_arrays_refused(protocol, value, refused):
    with pytest.raises(UnsafePickleError, match='cams.pkl: refusing') as info:
        safe_loads(pickle.dumps({'x': value}, protocol=protocol), name='cams.pkl')
    assert info.value.refused.startswith(refused)


def test_object_array_of_payloads_never_runs(tmp_path):
    marker = tmp_path / 'MARKER'
    arr = np.array([Payload(os.system, f'touch {marker}'), 1], dtype=object)
    data = pickle.dumps(arr, protocol=4)
    with pytest.raises(UnsafePickleError):
        safe_loads(data)
    assert not marker.exists()


# Hand-written streams: what NumPy's own pickles never do, but a crafted file can.
def _glob(module, name):
    return b'c' + module.encode() + b'\n' + name.encode() + b'\n'


def _text(s):
    return b'V' + s.encode('raw_unicode_escape') + b'\n'


def _raw(b):
    return b'C' + bytes([len(b)]) + b  # SHORT_BINBYTES


def _int(i):
    return b'I' + str(i).encode() + b'\n'


def _tuple(*items):
    return b'(' + b''.join(items) + b't'


FALSE, TRUE, NONE = b'I00\n', b'I01\n', b'N'


def _dtype(code):
    return _glob('numpy', 'dtype') + _tuple(_text(code), FALSE, TRUE) + b'R'


def _dtype_state(elsize=-1, alignment=-1, flags=0, endian='<'):
    return _tuple(_int(3), _text(endian), NONE, NONE, NONE, _int(elsize), _int(alignment),
                  _int(flags))


def _frombuffer_of_memo0(data):
    return _glob('numpy._core.numeric', '_frombuffer') + _tuple(
        _raw(data), b'g0\n', _tuple(_int(1)), _text('C')) + b'R'


HAND_WRITTEN = {
    # dtype.__setstate__ would make a 5-byte "<U1", which reads past each element.
    'inconsistent dtype': (_dtype('U1') + _dtype_state(5, 4, 8) + b'b.', 'inconsistent dtype'),
    # Changing a dtype an array already uses (it would re-interpret that array's memory).
    'build after use': (_dtype('f8') + b'p0\n0' + _frombuffer_of_memo0(b'\0' * 8) + b'0g0\n'
                        + _dtype_state() + b'b.', 'a __setstate__ of dtype float64'),
    'build twice': (_dtype('f8') + _dtype_state() + b'b' + _dtype_state() + b'b.',
                    'a __setstate__ of dtype float64'),
    'build a dict': (b'}}b.', 'a __setstate__ of dict'),
    'call ndarray': (_glob('numpy', 'ndarray') + _tuple(_tuple(_int(2)), _text('O')) + b'R.',
                     'a call of "numpy.ndarray"'),
    'call a DType class': (_glob('numpy.dtypes', 'Float64DType') + b')R.',
                           'a call of "numpy.dtypes.Float64DType"'),
    'object DType class': (_glob('numpy.dtypes', 'ObjectDType') + b'.',
                           'global "numpy.dtypes.ObjectDType"'),
    'newobj': (_glob('numpy.dtypes', 'Float64DType') + b')\x81.', 'an instance of a class'),
    'persistent id': (b'Pabc\n.', "persistent id 'abc'"),
    'other codec': (_glob('_codecs', 'encode') + _tuple(_text('x'), _text('rot13')) + b'R.',
                    '_codecs.encode with str'),
    'array of a DType class': (_glob('numpy._core.multiarray', '_reconstruct') + _tuple(
        _glob('numpy.dtypes', 'Float64DType'), _tuple(_int(0)), _raw(b'b')) + b'R.',
        'an array of class'),
    'array data as a list': (_glob('numpy._core.multiarray', '_reconstruct') + _tuple(
        _glob('numpy', 'ndarray'), _tuple(_int(0)), _raw(b'b')) + b'R' + _tuple(
        _int(1), _tuple(_int(1)), _dtype('f8'), FALSE, b']') + b'b.', 'array data of type list'),
    'dtype from a list': (_glob('numpy', 'dtype') + _tuple(b']', FALSE, TRUE) + b'R.',
                          'numpy.dtype of a list'),
}


@pytest.mark.parametrize('case', list(HAND_WRITTEN))
def test_crafted_numpy_states_refused(case):
    data, refused = HAND_WRITTEN[case]
    with pytest.raises(UnsafePickleError, match='x.pkl: refusing') as info:
        safe_loads(data, name='x.pkl')
    assert info.value.refused.startswith(refused), info.value.refused


def test_crafted_streams_differ_from_allowed_ones_only_in_the_refused_step():
    """Controls: the same streams without the refused step load."""
    arr = safe_loads(_dtype('f8') + _dtype_state() + b'bp0\n0' + _frombuffer_of_memo0(
        b'\0' * 7 + b'\x40') + b'.')
    assert arr.dtype == np.float64 and arr.tolist() == [2.0]
    assert safe_loads(_dtype('U1') + _dtype_state(4, 4, 8) + b'b.') == np.dtype('<U1')
    assert safe_loads(_glob('numpy.dtypes', 'Float64DType') + b'.') is type(np.dtype('f8'))
    assert safe_loads(_glob('_codecs', 'encode') + _tuple(_text('\xff'), _text('latin1'))
                      + b'R.') == b'\xff'


@pytest.mark.parametrize('data, detail', [
    (b'', 'EOFError'),
    (b'not a pickle', ''),
    (pickle.dumps({'R': np.eye(3)}, protocol=4)[:-10], ''),
])
def test_malformed_files_name_the_file(tmp_path, data, detail):
    path = tmp_path / 'broken.pkl'
    path.write_bytes(data)
    with pytest.raises(pickle.UnpicklingError, match='not a valid pickle') as info:
        safe_load(path)
    assert not isinstance(info.value, UnsafePickleError)
    assert str(path) in str(info.value) and detail in str(info.value)


# ----------------------------------------------------------------------------- .npy / .npz
def test_npy_and_npz_refuse_object_arrays(tmp_path):
    marker = tmp_path / 'MARKER'
    payload = np.array([Payload(os.system, f'touch {marker}')], dtype=object)
    npy = tmp_path / 'det.npy'
    np.save(npy, payload, allow_pickle=True)
    with pytest.raises(ValueError, match=r'det\.npy: the array is an object array'):
        load_npy(str(npy))
    npz = tmp_path / 'ann.npz'
    np.savez(npz, good=np.ones(3), names=payload)
    with np.load(npz, allow_pickle=False) as data:
        np.testing.assert_array_equal(npz_array(data, 'good', str(npz)), np.ones(3))
        with pytest.raises(ValueError, match=r'ann\.npz: array "names" is an object array'):
            npz_array(data, 'names', str(npz))
        with pytest.raises(KeyError) as info:
            npz_array(data, 'S', str(npz))
        assert info.value.args[0] == f'{npz} has no array "S" (has [\'good\', \'names\'])'
    with np.load(npz, allow_pickle=True) as data:
        with pytest.raises(ValueError, match='allow_pickle=False'):
            npz_array(data, 'good', str(npz))
    with pytest.raises(ValueError, match=r'expected one \.npy array, got an \.npz archive'):
        load_npy(str(npz))
    pkl = tmp_path / 'pickled.npy'
    pkl.write_bytes(pickle.dumps(Payload(os.system, f'touch {marker}')))
    with pytest.raises(ValueError, match=r'pickled\.npy: the array is an object array \(or a '
                       r'pickle\)'):
        load_npy(str(pkl))
    assert not marker.exists()
    arr = np.arange(6.0).reshape(2, 3)
    np.save(tmp_path / 'ok.npy', arr)
    np.testing.assert_array_equal(load_npy(str(tmp_path / 'ok.npy')), arr)


# ----------------------------------------------------------------------------- unbuilt arrays
def _reconstruct(shape=_tuple(_int(2)), code='f8'):
    """NumPy's ``_reconstruct(ndarray, shape, dtype)``: an array whose data come in BUILD."""
    return _glob('numpy._core.multiarray', '_reconstruct') + _tuple(
        _glob('numpy', 'ndarray'), shape, _raw(code.encode())) + b'R'


def _array_state(shape=_tuple(_int(2)), data=b'\0' * 16):
    return _tuple(_int(1), shape, _dtype('f8'), FALSE, _raw(data))


# One int64 of heap garbage, memoized as g0.
_GARBAGE_INT = _reconstruct(shape=_tuple(_int(1)), code='i8') + b'p0\n'
UNBUILT = {
    # Never given its data: the value would be heap garbage.
    'never built': b'}' + _text('R') + _reconstruct() + b's.',
    # Read as the shape of another array before its own BUILD (a garbage-sized allocation).
    'read as a shape': _GARBAGE_INT + b'0' + _reconstruct(shape=b'g0\n') + b'.',
    'read as a dimension': _GARBAGE_INT + b'0' + _reconstruct(shape=_tuple(b'g0\n')) + b'.',
    # Inside its own BUILD state (ndarray.__setstate__ would read it as a dimension).
    'inside its own state': _GARBAGE_INT + _array_state(shape=_tuple(b'g0\n')) + b'b.',
}


@pytest.mark.parametrize('case', list(UNBUILT))
def test_array_never_built_is_refused(tmp_path, case):
    path = tmp_path / 'cameras.pkl'
    path.write_bytes(UNBUILT[case])
    with pytest.raises(UnsafePickleError) as info:
        safe_load(path)
    assert str(info.value).startswith(f'{path}: refusing to unpickle an array ')
    assert 'uninitialised' in info.value.refused


def test_array_built_from_the_same_stream_loads():
    """Control: the stream of ``never built`` with its BUILD."""
    value = safe_loads(b'}' + _text('R') + _reconstruct() + _array_state(
        data=b'\0' * 7 + b'\x40' + b'\0' * 8) + b'bs.')
    assert value['R'].tolist() == [2.0, 0.0]


# ----------------------------------------------------------------------------- claimed sizes
def _frame(size):
    return b'\x80\x04\x95' + struct.pack('<Q', size)


HUGE = {
    # A protocol-4 frame of 1 TB in a 20-byte file.
    'frame': (_frame(10 ** 12) + b'}.', 'a frame of 1000000000000 bytes'),
    # bytes / bytearray of 1 TB (protocol 4 BINBYTES8, protocol 5 BYTEARRAY8).
    'bytes': (b'\x80\x04\x8e' + struct.pack('<Q', 10 ** 12) + b'.', 'a read of'),
    'bytearray': (b'\x80\x05\x96' + struct.pack('<Q', 10 ** 12) + b'.',
                  'a bytearray of 1000000000000 bytes'),
    # A 100 GB array from _reconstruct (NumPy would allocate it before any data is read).
    'array': (_reconstruct(shape=_tuple(_int(100 * 2 ** 30 // 8))) + b'.',
              'an array of shape (13421772800,) and dtype float64 of 107374182400 bytes'),
}


@pytest.mark.parametrize('case', list(HUGE))
def test_sizes_beyond_the_file_are_refused_before_allocating(tmp_path, case):
    data, refused = HUGE[case]
    path = tmp_path / 'cameras.pkl'
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError) as info:
        safe_load(path)
    assert info.value.refused.startswith(refused), info.value.refused
    assert str(info.value).startswith(f'{path}: refusing to unpickle ')
    assert 'the file holds only' in str(info.value)


def test_sizes_the_file_holds_still_load(tmp_path):
    """Controls: frames, long bytes and arrays that the file does hold."""
    value = {'R': np.arange(3000.0), 'name': b'x' * 70000, 'text': 'y' * 70000}
    for protocol in (4, 5):
        path = tmp_path / f'ok{protocol}.pkl'
        path.write_bytes(pickle.dumps(value, protocol=protocol))
        out = safe_load(path)
        np.testing.assert_array_equal(out['R'], value['R'])
        assert out['name'] == value['name'] and out['text'] == value['text']
    # bytearray has an opcode of its own in protocol 5 only (before, it calls the class).
    path = tmp_path / 'bytearray.pkl'
    path.write_bytes(pickle.dumps({'buf': bytearray(b'ab' * 9000)}, protocol=5))
    assert safe_load(path)['buf'] == bytearray(b'ab' * 9000)


# ----------------------------------------------------------------------------- damaged NumPy files
def test_truncated_and_corrupt_numpy_files_name_the_file(tmp_path):
    npz = tmp_path / 'h36m_test.npz'
    np.savez(npz, S=np.arange(4000.0), imgname=np.array(['a', 'b']))
    full = npz.read_bytes()
    truncated = tmp_path / 'truncated.npz'
    truncated.write_bytes(full[:len(full) // 2])
    with pytest.raises(ValueError) as info:
        open_npz(str(truncated))
    assert str(info.value).startswith(f'{truncated} is not an .npz archive (truncated or '
                                      'corrupt: BadZipFile')
    # Damaged inside an array's data: the archive opens, reading that array fails.
    corrupt = tmp_path / 'corrupt.npz'
    at = full.index(np.arange(4000.0).tobytes()[800:808])
    corrupt.write_bytes(full[:at] + b'\xff' * 8 + full[at + 8:])
    with open_npz(str(corrupt)) as data:
        assert npz_array(data, 'imgname', str(corrupt)).tolist() == ['a', 'b']
        with pytest.raises(ValueError) as info:
            npz_array(data, 'S', str(corrupt))
    assert str(info.value).startswith(f'{corrupt}: cannot read array "S": the file is '
                                      'truncated or corrupt (BadZipFile')
    for data, detail in ((b'', 'EOFError'), (np.lib.format.MAGIC_PREFIX, '')):
        npy = tmp_path / 'det.npy'
        npy.write_bytes(data)
        with pytest.raises(ValueError) as info:
            load_npy(str(npy))
        assert str(info.value).startswith(f'{npy}: cannot read the array') and \
            detail in str(info.value)
    single = tmp_path / 'single.npy'
    np.save(single, np.ones(3))
    with pytest.raises(ValueError, match=r'single\.npy is not an \.npz archive \(it holds a '
                                         r'single \.npy array\)'):
        open_npz(str(single))
