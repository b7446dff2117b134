import os.path as osp
import pickle

import pytest
import torch
from mmengine.runner import Runner

from helpers import tiny_cfg
from mmunsup3d.utils import UnsafeCheckpointError, checkpoint_safe_globals, safe_torch_load


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('resume'))
    runner = Runner.from_cfg(tiny_cfg(work, max_epochs=2))
    runner.train()
    return work, runner.iter // 2


def test_resume_continues_iteration_and_optimizer_state(trained, tmp_path):
    work, iters_per_epoch = trained
    ckpt1 = osp.join(work, 'epoch_1.pth')
    cfg = tiny_cfg(str(tmp_path), max_epochs=2)
    cfg.resume = True
    cfg.load_from = ckpt1
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.epoch == 2 and runner.iter == 2 * iters_per_epoch
    saved = safe_torch_load(osp.join(str(tmp_path), 'epoch_2.pth'))
    assert saved['meta']['epoch'] == 2 and saved['meta']['iter'] == 2 * iters_per_epoch
    # Adam's step counters continued from the resumed state instead of restarting.
    for name in ('lifter', 'discriminator'):
        state = saved['optimizer'][name]['state']
        assert int(state[0]['step']) == 2 * iters_per_epoch
    # Optimizer and LR schedule end where the uninterrupted run ended.
    straight = safe_torch_load(osp.join(work, 'epoch_2.pth'))
    for name in ('lifter', 'discriminator'):
        lr = saved['optimizer'][name]['param_groups'][0]['lr']
        assert lr == pytest.approx(straight['optimizer'][name]['param_groups'][0]['lr'])
        gamma = cfg.param_scheduler[name][0]['gamma']
        assert lr == pytest.approx(2e-4 * gamma, rel=1e-6)  # one epoch of decay
        assert saved['param_schedulers'][name][0]['last_step'] == \
            straight['param_schedulers'][name][0]['last_step']


def test_checkpoint_loads_with_the_scoped_allow_list(trained):
    work, _ = trained
    path = osp.join(work, 'epoch_1.pth')
    ckpt = safe_torch_load(path)
    assert 'message_hub' in ckpt and 'state_dict' in ckpt
    from mmengine.logging import HistoryBuffer
    buffers = ckpt['message_hub']['log_scalars']
    assert any(type(v) is HistoryBuffer for v in buffers.values())
    # A stock MMEngine checkpoint: what it needs beyond torch's defaults is exactly what the
    # plugin allows for its own loads (and nothing of it is left in torch's global list).
    needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    allowed = {name for _, name in checkpoint_safe_globals()}
    assert needed and needed <= allowed, needed - allowed
    assert not set(torch.serialization.get_safe_globals()) & set(checkpoint_safe_globals())


class _Evil:

    def __reduce__(self):
        import os
        return (os.system, ('echo pwned > /dev/null', ))


def test_malicious_and_corrupt_checkpoints_are_refused(tmp_path):
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': _Evil()}, evil)
    with pytest.raises(UnsafeCheckpointError, match='allow-list'):
        safe_torch_load(str(evil))
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint at all' * 10)
    with pytest.raises(RuntimeError, match='corrupt'):
        safe_torch_load(str(corrupt))
    with pytest.raises(FileNotFoundError):
        safe_torch_load(str(tmp_path / 'missing.pth'))
    raw = tmp_path / 'raw.pkl'
    raw.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises((UnsafeCheckpointError, RuntimeError)):
        safe_torch_load(str(raw))
