"""Swapping a part of the model is a command-line config change (``tools/train.py``)."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from helpers import DEMO_CONFIG, REPO

TINY = ['model.lifter.width=32', 'model.lifter.num_blocks=1', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', 'train_dataloader.batch_size=64',
        'train_dataloader.dataset.clips=[walk]', 'val_dataloader.dataset.clips=[walk]',
        'default_hooks.logger.interval=1']


def _train(tmp_path, *options):
    work = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', DEMO_CONFIG, '--work-dir', str(work),
         '--cfg-options', *TINY, *options],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env=dict(__import__('os').environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    logs = sorted((work).glob('*/vis_data/scalars.json'))
    assert logs, 'no scalars log written'
    rows = [json.loads(line) for line in logs[-1].read_text().splitlines()]
    return work, {k for row in rows for k in row}


def test_lsgan_and_narrower_cameras_train_from_the_command_line(tmp_path):
    work, keys = _train(tmp_path, 'model.discriminator.width=32',
                        'model.discriminator.num_blocks=1', 'model.gan_loss.gan_type=lsgan',
                        'model.camera_sampler.max_azimuth_deg=90')
    assert {'loss_2d', 'loss_3d', 'loss_adv', 'loss_disc', 'loss_disc_r1'} <= keys
    assert osp.isfile(work / 'epoch_1.pth')


def test_removing_the_discriminator_removes_its_losses_and_optimizer(tmp_path):
    work, keys = _train(tmp_path, 'model.discriminator=None')
    assert {'loss_2d', 'loss_3d'} <= keys
    assert not {'loss_adv', 'loss_disc', 'loss_disc_r1'} & keys
    from mmunsup3d.utils import safe_torch_load
    ckpt = safe_torch_load(str(work / 'epoch_1.pth'))
    assert set(ckpt['optimizer']) == {'lifter'}
    assert not any(k.startswith('discriminator.') for k in ckpt['state_dict'])


def test_old_arguments_name_their_replacement():
    import mmunsup3d  # noqa: F401
    from mmpose.registry import MODELS
    with pytest.raises(TypeError, match='"loss_weights" was replaced by cycle_losses'):
        MODELS.build(dict(type='Unsup3DLifter', lifter=dict(type='ResidualLifter', width=8),
                          loss_weights=dict(loss_2d=1.0)))
