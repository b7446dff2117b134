"""``python -m mmunsup3d convert-checkpoint IN OUT --trust``: the deliberate trust route."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import REPO
from mmunsup3d.utils.checkpoint import UnsafeCheckpointError, safe_torch_load
from mmunsup3d.utils.checkpoint_convert import (UnsupportedObjectsError,
                                                convert_trusted_checkpoint)


# Stands for a module of the user's own code whose object ended up in ``meta``.
USER_MODULE = """
class UserObject:
    def __init__(self, value):
        self.value = value
"""


def _cli(*args, **kwargs):
    return subprocess.run([sys.executable, '-m', 'mmunsup3d', 'convert-checkpoint', *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture
def user_file(tmp_path, monkeypatch):
    code = tmp_path / 'code'
    code.mkdir()
    (code / 'usermod.py').write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv('PYTHONPATH', str(code))
    from usermod import UserObject
    path = str(tmp_path / 'user.pth')
    torch.save({'state_dict': {'w': torch.ones(3)},
                'meta': {'epoch': 3, 'arr': np.arange(2), 'obj': UserObject(1)}}, path)
    with pytest.raises(UnsafeCheckpointError):
        safe_torch_load(path)
    return path


def test_convert_lists_unsupported_objects_and_writes_nothing(user_file, tmp_path):
    dst = str(tmp_path / 'safe.pth')
    with pytest.raises(UnsupportedObjectsError, match=r"checkpoint\['meta'\]\['obj'\]"):
        convert_trusted_checkpoint(user_file, dst)
    assert not osp.exists(dst) and sorted(os.listdir(tmp_path)) == ['code', 'user.pth']


def test_convert_drops_them_on_request_and_the_result_loads_safely(user_file, tmp_path):
    dst = str(tmp_path / 'safe.pth')
    left_out = convert_trusted_checkpoint(user_file, dst, drop_unsupported=True)
    assert left_out == ["checkpoint['meta']['obj']: usermod.UserObject"]
    got = safe_torch_load(dst)
    assert got['meta']['epoch'] == 3 and got['meta']['arr'].tolist() == [0, 1]
    assert torch.equal(got['state_dict']['w'], torch.ones(3)) and 'obj' not in got['meta']


def test_convert_never_replaces_an_existing_file(user_file, tmp_path):
    dst = tmp_path / 'safe.pth'
    dst.write_bytes(b'mine')
    with pytest.raises(FileExistsError):
        convert_trusted_checkpoint(user_file, str(dst), drop_unsupported=True)
    assert dst.read_bytes() == b'mine'


def test_cli_requires_trust(tmp_path):
    """Without --trust nothing is unpickled (the payload would create the marker)."""
    marker = tmp_path / 'RAN'
    src = str(tmp_path / 'evil.pth')
    subprocess.run([sys.executable, '-c',
                    'import os, torch\n'
                    'class P:\n'
                    f'    def __reduce__(self): return (os.system, ("touch {marker}",))\n'
                    f'torch.save({{"x": P()}}, {src!r})'], check=True, timeout=60)
    done = _cli(src, str(tmp_path / 'out.pth'))
    assert done.returncode == 2 and '--trust' in done.stderr
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()


def test_cli_converts_a_trusted_file(user_file, tmp_path):
    dst = str(tmp_path / 'safe.pth')
    done = _cli(user_file, dst, '--trust', '--drop-unsupported')  # PYTHONPATH: usermod
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == dst and "left out checkpoint['meta']['obj']" in done.stderr
    assert safe_torch_load(dst)['meta']['epoch'] == 3
