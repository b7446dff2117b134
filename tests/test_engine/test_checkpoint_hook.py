"""A run interrupted while it writes a checkpoint (max_keep_ckpts=1) leaves one to resume from."""
import os
import os.path as osp

import pytest
from mmengine.fileio.backends import LocalBackend
from mmengine.runner import Runner

from helpers import tiny_cfg
from mmunsup3d.utils import safe_torch_load


class Killed(BaseException):
    """Stands in for SIGKILL in the middle of a write (nothing catches a BaseException here)."""


def _cfg(work_dir: str, max_epochs: int):
    cfg = tiny_cfg(work_dir, max_epochs=max_epochs, clips=('walk', ))
    cfg.train_dataloader.batch_size = 512  # a few iterations per epoch
    # The project's default checkpoint hook (configs/_base_/default_runtime.py), keeping one.
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    return cfg


def _kill_during_checkpoint_write(monkeypatch, number: int) -> None:
    """The ``number``-th checkpoint write stops half-way, as a killed process would."""
    put, writes = LocalBackend.put, []

    def interrupted_put(self, obj, filepath):
        if '.pth' in str(filepath):
            writes.append(filepath)
            if len(writes) == number:
                with open(filepath, 'wb') as f:
                    f.write(obj[:len(obj) // 2])
                raise Killed(filepath)
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', interrupted_put)


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    work = str(tmp_path / 'work')
    _kill_during_checkpoint_write(monkeypatch, number=2)
    with pytest.raises(Killed):
        Runner.from_cfg(_cfg(work, max_epochs=2)).train()
    first = osp.join(work, 'epoch_1.pth')
    # The checkpoint that was kept is still there, complete, and named by last_checkpoint.
    assert safe_torch_load(first)['meta']['epoch'] == 1
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == first
    assert not osp.exists(osp.join(work, 'epoch_2.pth'))  # a half-written file is never one
    monkeypatch.undo()

    cfg = _cfg(work, max_epochs=2)
    cfg.resume = True  # from last_checkpoint, as tools/train.py --resume
    Runner.from_cfg(cfg).train()
    assert safe_torch_load(osp.join(work, 'epoch_2.pth'))['meta']['epoch'] == 2
    # Rotation still works: the outdated checkpoint went once the new one was complete.
    assert not osp.exists(first)
    assert sorted(f for f in os.listdir(work) if f.endswith('.pth')) == ['epoch_2.pth']
