"""The checkpoint allow-list: what legitimate files hold loads, each guarded global refuses
what it is not for, and nothing of the plugin stays in torch's process-wide list."""
import io
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer

import mmunsup3d  # noqa: F401
from mmunsup3d.utils.checkpoint import UnsafeCheckpointError, safe_torch_load
from mmunsup3d.utils.checkpoint_globals import MAX_DEPTH, checkpoint_globals

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy 1
    from numpy.core.multiarray import _reconstruct


def _save(tmp_path, obj, name='ckpt.pth', **kwargs) -> str:
    path = str(tmp_path / name)
    torch.save(obj, path, **kwargs)
    return path


def test_legitimate_contents_load_as_plain_objects(tmp_path):
    obj = {'state_dict': OrderedDict(w=torch.ones(2)),
           'meta': {'arr': np.arange(6, dtype=np.float32).reshape(2, 3), 'f': np.float64(1.5),
                    'i': np.int64(3), 's': {1, 2}, 'fs': frozenset({'a'}), 'b': b'xy',
                    'cfg': ConfigDict(a=1, b=dict(c=2)), 't': (np.zeros(2), [np.ones(1)])}}
    got = safe_torch_load(_save(tmp_path, obj))
    meta = got['meta']
    assert type(meta['arr']) is np.ndarray and meta['arr'].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert type(meta['t'][0]) is np.ndarray and type(meta['t'][1][0]) is np.ndarray
    assert meta['f'] == 1.5 and meta['i'] == 3 and meta['s'] == {1, 2}
    assert meta['fs'] == frozenset({'a'}) and meta['b'] == b'xy'
    assert isinstance(meta['cfg'], ConfigDict) and meta['cfg'].b.c == 2
    assert type(got['state_dict']) is OrderedDict


def test_numpy1_global_names_load(tmp_path):
    """Files written under NumPy 1 name ``numpy.core.multiarray``; the legacy format keeps the
    pickle's text opcodes, so the spelling can be changed in place."""
    path = _save(tmp_path, {'a': np.arange(3), 'f': np.float32(2.0)},
                 _use_new_zipfile_serialization=False)
    with open(path, 'rb') as f:
        data = f.read()
    assert b'numpy._core.multiarray' in data
    with open(path, 'wb') as f:
        f.write(data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray'))
    got = safe_torch_load(path)
    assert got['a'].tolist() == [0, 1, 2] and got['f'] == 2.0


def test_stock_history_buffer_loads_and_class_table_is_untouched(tmp_path):
    buf = HistoryBuffer()
    buf.update(2.0)
    buf.update(4.0)
    path = _save(tmp_path, {'message_hub': {'log_scalars': {'loss': buf}}})
    with open(path, 'rb') as f:  # stock __getstate__ references HistoryBuffer.min by getattr
        assert b'getattr' in f.read()
    table = dict(HistoryBuffer._statistics_methods)
    got = safe_torch_load(path)['message_hub']['log_scalars']['loss']
    assert type(got) is HistoryBuffer and float(got.mean()) == 3.0
    assert HistoryBuffer._statistics_methods == table


@pytest.mark.parametrize('methods', [{'mean': np.ndarray}, {'mean': HistoryBuffer.max},
                                     {'evil': HistoryBuffer.min}],
                         ids=['class-as-method', 'swapped-method', 'new-name'])
def test_history_buffer_statistics_methods_are_checked(tmp_path, methods):
    """A file cannot put entries into the statistics table every HistoryBuffer shares."""
    buf = HistoryBuffer()
    saved = HistoryBuffer._statistics_methods
    HistoryBuffer._statistics_methods = dict(saved, **methods)
    try:
        path = _save(tmp_path, {'b': buf})
    finally:
        HistoryBuffer._statistics_methods = saved
    table = dict(saved)
    with pytest.raises(UnsafeCheckpointError, match='statistics method'):
        safe_torch_load(path)
    assert HistoryBuffer._statistics_methods == table


class _Reduce:
    """Pickles as ``func(*args)`` (+ ``state`` through BUILD)."""

    def __init__(self, func, args, state=None):
        self.value = (func, args) if state is None else (func, args, state)

    def __reduce__(self):
        return self.value


@pytest.mark.parametrize('payload,match', [
    (_Reduce(getattr, (HistoryBuffer, '__init__')), 'getattr'),
    (_Reduce(getattr, (np.ndarray, 'tofile')), 'getattr'),
    (_Reduce(_reconstruct, (np.ndarray, (4096, ), b'b')), 'empty array'),
    (_Reduce(_reconstruct, (np.ndarray, (0, ), b'b'),
             (1, (2, ), _Reduce(np.dtype, ('f8', False, True),
                                (3, '<', None, None, None, -1, -1, 0x3f)), False, b'\0' * 16)),
     'dtype'),
    (_Reduce(np.dtype, ('f8', False, True), (3, '<', None, None, None, -1, -1, 0x3f)), 'dtype'),
    (_Reduce(np.dtype, ('O', False, True)), 'object'),
], ids=['getattr-init', 'getattr-tofile', 'uninitialised-array', 'array-of-object-flagged-dtype',
        'object-flagged-dtype', 'object-dtype'])
def test_guarded_globals_refuse_misuse(tmp_path, payload, match):
    path = _save(tmp_path, {'meta': {'x': payload}})
    with pytest.raises(UnsafeCheckpointError, match=match):
        safe_torch_load(path)


def test_deep_nesting_is_refused_cleanly(tmp_path):
    value = []
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    path = _save(tmp_path, {'meta': value})
    with pytest.raises(UnsafeCheckpointError, match='nested deeper'):
        safe_torch_load(path)


def test_scope_leaves_user_entries_and_adds_nothing():
    """Globals a process allow-listed itself survive the plugin's loads."""
    mine = (np.ndarray, 'numpy.ndarray')
    torch.serialization.add_safe_globals([np.ndarray, mine])
    try:
        before = set(torch.serialization.get_safe_globals())
        with checkpoint_globals():
            assert len(torch.serialization.get_safe_globals()) > len(before)
        assert set(torch.serialization.get_safe_globals()) == before
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(list(before - {np.ndarray, mine}))


def test_bytes_loader_refuses_payload_and_loads_weights():
    from mmunsup3d.utils.checkpoint import safe_torch_load_bytes
    buf = io.BytesIO()
    torch.save({'w': torch.arange(3.0)}, buf)
    assert safe_torch_load_bytes(buf.getvalue(), 's3://b/x.pth')['w'].tolist() == [0, 1, 2]
    buf = io.BytesIO()
    torch.save({'x': _Reduce(os.system, ('true', ))}, buf)
    with pytest.raises(UnsafeCheckpointError, match='s3://b/x.pth'):
        safe_torch_load_bytes(buf.getvalue(), 's3://b/x.pth')
    with pytest.raises(RuntimeError, match='not a checkpoint'):
        safe_torch_load_bytes(pickle.dumps(1), 's3://b/y.pth')
