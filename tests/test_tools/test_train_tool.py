"""tools/train.py: strict ``load_from`` / ``--resume`` (a checkpoint of another width stops the
run naming the file, the keys and the options), fine-tuning from a lifter-only checkpoint, and
configs that cannot be trained."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.runner import Runner

from helpers import REPO, tiny_cfg
from mmunsup3d.utils import safe_torch_load

TRAIN = osp.join(REPO, 'tools', 'train.py')
NARROW = 16  # the checkpoint's lifter width; the tiny runs below build 32


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TRAIN, *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=600)


def _tiny(work_dir: str):
    cfg = tiny_cfg(work_dir, max_epochs=1, clips=('walk', ))
    cfg.train_dataloader.batch_size = 512  # a few iterations per epoch
    cfg.default_hooks.logger.interval = 1
    return cfg


@pytest.fixture(scope='module')
def narrow(tmp_path_factory) -> str:
    """A one-epoch training checkpoint (optimizer, message hub...) of a width-16 lifter."""
    work = str(tmp_path_factory.mktemp('narrow'))
    cfg = _tiny(work)
    cfg.model.lifter.width = NARROW
    Runner.from_cfg(cfg).train()
    return osp.join(work, 'epoch_1.pth')


@pytest.fixture(scope='module')
def config_file(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp('config')
    path = str(folder / 'tiny.py')
    _tiny(str(folder / 'unused')).dump(path)
    return path


def _assert_mismatch_named(proc: subprocess.CompletedProcess, ckpt: str, work: str) -> None:
    assert proc.returncode != 0, proc.stdout[-3000:]
    err = proc.stderr
    assert (f'tools/train.py: error: CheckpointMismatchError: Checkpoint {ckpt} does not fit '
            'the model') in err, err[-4000:]
    assert (f'lifter.stem.0.weight: checkpoint shape ({NARROW}, 34), model shape (32, 34)'
            in err)
    assert (f'build that lifter with --cfg-options model.lifter.width={NARROW} '
            'model.lifter.num_blocks=1 model.lifter.in_channels=2') in err
    assert 'Traceback' not in err
    assert not glob.glob(osp.join(work, '*.pth'))  # not a single iteration was trained


def test_load_from_of_another_width_stops_before_training(narrow, config_file, tmp_path):
    work = str(tmp_path / 'work')
    proc = _train(config_file, '--work-dir', work, '--cfg-options', f'load_from={narrow}')
    _assert_mismatch_named(proc, narrow, work)


def test_resume_from_another_width_names_the_file_and_keys(narrow, config_file, tmp_path):
    work = str(tmp_path / 'work')
    proc = _train(config_file, '--work-dir', work, '--resume', narrow)
    _assert_mismatch_named(proc, narrow, work)


def test_load_from_lifter_only_checkpoint_keeps_fresh_discriminators(narrow, config_file,
                                                                      tmp_path):
    state = safe_torch_load(narrow)['state_dict']
    lifter_only = str(tmp_path / 'lifter_only.pth')
    torch.save(dict(meta=dict(), state_dict={k: v for k, v in state.items()
                                             if k.startswith('lifter.')}), lifter_only)
    work = str(tmp_path / 'work')
    proc = _train(config_file, '--work-dir', work, '--cfg-options', f'load_from={lifter_only}',
                  f'model.lifter.width={NARROW}')
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    line = next(x for x in log.splitlines() if f'load_from {lifter_only}: ' in x)
    assert 'the checkpoint has no weights for discriminator' in line
    assert 'they keep their fresh initialisation' in line
    assert f'Load checkpoint from {lifter_only}' in log
    trained = safe_torch_load(osp.join(work, 'epoch_1.pth'))['state_dict']
    assert trained['lifter.stem.0.weight'].shape == (NARROW, 34)


@pytest.mark.parametrize('text, missing', [
    ("data_root = 'data/h36m/'\n", 'model, train_dataloader, train_cfg, optim_wrapper'),
    ("model = dict(type='Unsup3DLifter')\ntrain_cfg = dict(max_epochs=1)\n",
     'train_dataloader, optim_wrapper'),
])
def test_config_that_cannot_be_trained_is_a_clear_error(text, missing, tmp_path):
    config = tmp_path / 'not_a_train_config.py'
    config.write_text(text)
    work = tmp_path / 'work'
    proc = _train(str(config), '--work-dir', str(work))
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert (f'tools/train.py: error: {config} cannot be run by tools/train.py: it has no '
            f'{missing} (tools/train.py needs model, train_dataloader, train_cfg, '
            'optim_wrapper)') in proc.stderr
    assert not work.exists()
