"""Exact (bit-identical) resume, RNGStateHook, and the --resume error for inference checkpoints."""
import glob
import os
import os.path as osp
import random
import signal
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from helpers import DEMO_CONFIG, REPO, load_tool, tiny_cfg
from mmunsup3d.engine.hooks import RNGStateHook
from mmunsup3d.utils import safe_torch_load

TRAIN = osp.join(REPO, 'tools', 'train.py')
# Exercises every random stream: dropout, flips, random cameras, the extra-2D rows of
# WithExtra2DDataset (its own NumPy generator), and the detector-like keypoint noise below.
ADAPTER_CONFIG = osp.join(REPO, 'configs', 'unsup3d',
                          'unsup3d_reslifter-2ddisc-tdisc-adapter_1xb256-100e_pybullet-mocap.py')
KEYPOINT_NOISE = dict(type='KeypointNoise2D', std=0.03, outlier_prob=0.03, outlier_std=0.3,
                      drop_prob=0.03)
PUBLISHED = sorted(glob.glob(osp.join(
    REPO, 'checkpoints', 'unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap_*.pth')))

# Imported by the run that is killed (custom_imports): it stops in the 2nd iteration of epoch 2
# and waits there, so the test's SIGKILL lands mid-epoch at a known point instead of racing a
# fast epoch. It draws no random number.
PAUSE_HOOK = '''
import os, time
from mmengine.hooks import Hook
from mmpose.registry import HOOKS


@HOOKS.register_module()
class PauseForKillHook(Hook):

    def __init__(self, marker, epoch=1, batch_idx=1, seconds=60):
        self.marker, self.epoch, self.batch_idx, self.seconds = marker, epoch, batch_idx, seconds

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.epoch == self.epoch and batch_idx == self.batch_idx:
            open(self.marker, 'w').close()
            time.sleep(self.seconds)
'''


def _exact_cfg(work_dir: str, max_epochs: int = 3):
    cfg = tiny_cfg(work_dir, max_epochs=max_epochs, config=ADAPTER_CONFIG)
    cfg.model.keypoint_noise = KEYPOINT_NOISE
    # Validation after every epoch: its DataLoader draws from the torch generator between the
    # checkpoint of epoch k and the start of epoch k + 1.
    cfg.train_cfg.val_interval = 1
    return cfg


def _env() -> dict:
    # Same thread count and device (CPU) for every run: bit-identity is per machine setup.
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')


def _train(cfg_file: str, work_dir: str, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, TRAIN, cfg_file, '--work-dir', work_dir, *extra],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f'{extra} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc


def _assert_same(a: Any, b: Any, where: str) -> None:
    """Bit-identical nested structures (every tensor with torch.equal)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f'{where} differs (max |diff| ' \
                                  f'{(a.double() - b.double()).abs().max().item():.3g})'
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f'{where}: keys differ'
        for k in a:
            _assert_same(a[k], b[k], f'{where}.{k}')
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f'{where}: lengths differ'
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


def test_sigkill_and_resume_is_bit_identical(tmp_path):
    straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
    cfg_file = str(tmp_path / 'exact.py')
    _exact_cfg(straight).dump(cfg_file)
    (tmp_path / 'pause_hook.py').write_text(PAUSE_HOOK)
    marker = str(tmp_path / 'paused_in_epoch_2')
    kill_cfg = _exact_cfg(killed)
    kill_cfg.custom_imports = dict(imports=['mmunsup3d', 'pause_hook'],
                                   allow_failed_imports=False)
    kill_cfg.custom_hooks = [dict(type='PauseForKillHook', marker=marker)]
    kill_file = str(tmp_path / 'exact_kill.py')
    kill_cfg.dump(kill_file)

    env = _env()
    env['PYTHONPATH'] = os.pathsep.join([str(tmp_path), env.get('PYTHONPATH', '')])
    victim = subprocess.Popen([sys.executable, TRAIN, kill_file, '--work-dir', killed],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not osp.exists(marker):
            assert victim.poll() is None, f'run exited early:\n{victim.stderr.read()[-4000:]}'
            assert time.monotonic() < deadline, 'epoch 2 never started'
            time.sleep(0.2)
        assert osp.isfile(osp.join(killed, 'epoch_1.pth'))
        assert not osp.exists(osp.join(killed, 'epoch_2.pth'))  # really mid-epoch 2
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL

    # The uninterrupted run runs while nothing else trains (one training process at a time).
    _train(cfg_file, straight)
    resumed = _train(cfg_file, killed, '--resume')
    assert 'resumed epoch: 1' in resumed.stdout + resumed.stderr
    assert 'restored the random-number states of epoch 1' in resumed.stdout + resumed.stderr

    a = safe_torch_load(osp.join(straight, 'epoch_3.pth'))
    b = safe_torch_load(osp.join(killed, 'epoch_3.pth'))
    assert a['meta']['epoch'] == b['meta']['epoch'] == 3 and a['meta']['iter'] == b['meta']['iter']
    assert len(a['state_dict']) > 10
    _assert_same(a['state_dict'], b['state_dict'], 'state_dict')
    _assert_same(a['optimizer'], b['optimizer'], 'optimizer')
    _assert_same(a['param_schedulers'], b['param_schedulers'], 'param_schedulers')
    # Validation drew after epoch 1, so the uninterrupted run moved epoch_1.pth's state on to
    # the one epoch 2 started from, and the killed run resumed from exactly that state.
    _assert_same(safe_torch_load(osp.join(straight, 'epoch_1.pth'))['meta']['rng_state'],
                 safe_torch_load(osp.join(killed, 'epoch_1.pth'))['meta']['rng_state'],
                 'epoch_1 rng_state')
    assert not glob.glob(osp.join(straight, '*.tmp')) + glob.glob(osp.join(straight, '.*.tmp'))


@pytest.fixture
def runner(tmp_path):
    cfg = _exact_cfg(str(tmp_path / 'work'), max_epochs=2)
    runner = Runner.from_cfg(cfg)
    runner.train_loop  # builds the loop and its dataloader (the hook reads the sampler)
    return runner


def _draws(runner) -> list:
    """One draw from every generator the training uses."""
    dataset = runner.train_dataloader.dataset
    return [torch.rand(4), np.random.rand(3), random.random(),
            dataset._generator().integers(0, 10**9, size=3), runner.train_dataloader.sampler.seed]


def _scramble(runner) -> None:
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    runner.train_dataloader.dataset._generator().integers(0, 10, size=7)
    runner.train_dataloader.sampler.seed = 99


def test_hook_restores_exactly_what_it_saved(runner, tmp_path):
    hook = RNGStateHook()
    torch.rand(3), np.random.rand(2), random.random()  # move off the freshly seeded states
    ckpt = dict(meta=dict(epoch=1, iter=7))
    hook.before_save_checkpoint(runner, ckpt)
    path = str(tmp_path / 'ckpt.pth')
    torch.save(ckpt, path)
    # Only allow-listed types: loads with weights_only=True, no unsafe global referenced.
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    loaded = safe_torch_load(path)
    assert set(loaded['meta']['rng_state']['datasets']) == {'dataset'}  # WithExtra2DDataset
    expected = _draws(runner)

    _scramble(runner)
    assert not np.array_equal(_draws(runner)[1], expected[1])
    runner.train_loop._epoch, runner.train_loop._iter = 1, 7  # what Runner.resume sets
    hook.after_load_checkpoint(runner, loaded)
    _scramble(runner)  # e.g. Runner.resume re-seeding: the restore must come after it
    hook.before_train_epoch(runner)
    got = _draws(runner)
    assert torch.equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2]
    np.testing.assert_array_equal(got[3], expected[3])
    assert got[4] == expected[4] == 0


def test_load_from_keeps_the_new_runs_streams(runner):
    hook = RNGStateHook()
    ckpt = dict(meta=dict(epoch=3, iter=21))
    hook.before_save_checkpoint(runner, ckpt)
    torch.manual_seed(5)
    expected = torch.rand(4)
    torch.manual_seed(5)
    hook.after_load_checkpoint(runner, ckpt)  # loop still at epoch 0, iter 0: a load_from
    hook.before_train_epoch(runner)
    assert torch.equal(torch.rand(4), expected)


def test_validation_inside_training_leaves_the_training_streams(runner):
    hook = [h for h in runner.hooks if isinstance(h, RNGStateHook)]
    assert len(hook) == 1  # enabled by default_runtime.py
    hook = hook[0]
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    expected = [torch.rand(3), np.random.rand(2), random.random()]
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    hook.before_val_epoch(runner)
    torch.rand(5), np.random.rand(4), random.random()  # e.g. the validation DataLoader's seed
    hook.after_val_epoch(runner, {})
    got = [torch.rand(3), np.random.rand(2), random.random()]
    assert torch.equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2]


@pytest.mark.skipif(not PUBLISHED, reason='no published zoo checkpoint in checkpoints/')
def test_resume_from_inference_checkpoint_exits_with_clear_message(tmp_path):
    work = str(tmp_path / 'work')
    proc = subprocess.run(
        [sys.executable, TRAIN, DEMO_CONFIG, '--work-dir', work, '--resume', PUBLISHED[0]],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert 'inference checkpoint' in proc.stderr and 'load_from' in proc.stderr, proc.stderr
    assert f'--cfg-options load_from={PUBLISHED[0]}' in proc.stderr
    assert 'KeyError' not in proc.stderr
    assert not osp.exists(work)  # refused before the Runner made its work_dir


def test_check_resume_checkpoint(tmp_path):
    train = load_tool('train.py')
    cfg = tiny_cfg(str(tmp_path / 'fresh'))
    cfg.resume, cfg.load_from = True, None
    train.check_resume_checkpoint(cfg)  # auto-resume, nothing in work_dir: starts fresh
    lifter_only = tmp_path / 'lifter_only.pth'
    torch.save(dict(meta=dict(epoch=100), state_dict={'lifter.w': torch.zeros(2)}), lifter_only)
    cfg.load_from = str(lifter_only)
    with pytest.raises(train.ResumeCheckpointError,
                       match=r'inference checkpoint .*missing message_hub, optimizer, '
                             r'param_schedulers, meta\.iter.*load_from='):
        train.check_resume_checkpoint(cfg)
    cfg.load_from = str(tmp_path / 'missing.pth')
    with pytest.raises(train.ResumeCheckpointError, match='not found'):
        train.check_resume_checkpoint(cfg)
    cfg.resume = False  # load_from alone (fine-tuning) is not checked
    train.check_resume_checkpoint(cfg)


def test_rng_state_hook_can_be_disabled_from_the_command_line(tmp_path):
    train = load_tool('train.py')
    args = train.argparse.Namespace(
        work_dir=str(tmp_path), amp=False, resume=None, no_validate=False,
        cfg_options={'default_hooks.rng_state': None, 'default_hooks.checkpoint': None})
    cfg = train.merge_args(tiny_cfg(str(tmp_path)), args)
    # Our hook's key is dropped (MMEngine would assert on it); MMEngine's own None stays, as
    # it means "remove the built-in CheckpointHook" to the Runner.
    assert 'rng_state' not in cfg.default_hooks
    assert 'checkpoint' in cfg.default_hooks and cfg.default_hooks.checkpoint is None
    assert cfg.default_hooks.sampler_seed.type == 'DistSamplerSeedHook'
