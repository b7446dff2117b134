"""Short training smoke tests of every ablation option, through its own config and the Runner."""
import os.path as osp

import numpy as np
import torch
import pytest
from mmengine.runner import Runner

from helpers import REPO, load_tool, tiny_cfg

CFG = osp.join(REPO, 'configs', 'unsup3d')


@pytest.mark.parametrize('name, logged', [
    ('unsup3d_reslifter-selfconsist_1xb256-100e_pybullet-mocap.py', {'loss_2d', 'loss_3d'}),
    ('unsup3d_reslifter-2ddisc-semi10_1xb256-100e_pybullet-mocap.py', {'loss_sup', 'loss_disc'}),
    ('unsup3d_reslifter-2ddisc-conf_1xb256-100e_pybullet-mocap.py', {'loss_adv', 'loss_disc'}),
    ('unsup3d_reslifter-2ddisc-tdisc-elevation_1xb256-100e_pybullet-mocap.py',
     {'elevation_deg', 'loss_temporal', 'loss_tdisc'}),
    ('unsup3d_reslifter-2ddisc-tdisc-conf_1xb256-100e_pybullet-mocap.py',
     {'loss_temporal', 'loss_tdisc'}),
    ('unsup3d_reslifter-2ddisc-tdisc-sym_1xb256-100e_pybullet-mocap.py',
     {'loss_symmetry', 'loss_temporal'}),
    ('unsup3d_reslifter-2ddisc-tdisc-adapter_1xb256-100e_pybullet-mocap.py',
     {'loss_adapter', 'loss_adapter_reg', 'loss_temporal'}),
])
def test_option_config_trains_and_evaluates(name, logged, tmp_path):
    cfg = tiny_cfg(str(tmp_path), max_epochs=1, config=osp.join(CFG, name))
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    missing = {k for k in logged if f'train/{k}' not in scalars}
    assert not missing, f'{name}: not logged: {missing}'
    for key in logged:
        assert np.isfinite(scalars[f'train/{key}'].current())
    metrics = runner.test()
    assert 0 < metrics['N-MPJPE'] < 1.0 and np.isfinite(metrics['P-MPJPE'])


def test_h36m_temporal_config_trains_on_the_fixture(tmp_path):
    """The Human3.6M temporal config: consecutive-frame pairs from MMPose's files, batched."""
    from mmengine.config import Config

    from mmunsup3d.engine.launch import propagate_data_root
    tool = load_tool('dataset_converters', 'make_h36m_fixture.py')
    root = str(tmp_path / 'h36m')
    tool.write_fixture(root)
    cfg = Config.fromfile(osp.join(CFG, 'unsup3d_reslifter-2ddisc-tdisc_8xb64-200e_h36m.py'))
    options = dict(data_root=root)
    cfg.merge_from_dict(options)
    propagate_data_root(cfg, options)
    cfg.work_dir = str(tmp_path / 'work')
    for name in ('lifter', 'discriminator', 'temporal_discriminator'):
        cfg.model[name].width = 32
        cfg.model[name].num_blocks = 1
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    batch = next(iter(runner.train_dataloader))
    inputs = batch['inputs']
    assert inputs['keypoints_2d_next'].shape == inputs['keypoints_2d'].shape
    assert inputs['has_next'].dtype == torch.bool and inputs['has_next'].any()
    runner.train()
    scalars = runner.message_hub.log_scalars
    assert np.isfinite(scalars['train/loss_temporal'].current())
    assert np.isfinite(scalars['train/loss_tdisc'].current())


def test_betas_config_is_the_temporal_config_with_gan_betas(tmp_path):
    """The betas row mixes runs of this file with runs that set the same betas through
    --cfg-options on the temporal config: both must train the same model the same way."""
    from mmengine.config import Config

    betas = osp.join(CFG, 'unsup3d_reslifter-2ddisc-tdisc-betas05_1xb256-100e_pybullet-mocap.py')
    temporal = Config.fromfile(
        osp.join(CFG, 'unsup3d_reslifter-2ddisc-tdisc_1xb256-100e_pybullet-mocap.py'))
    names = ('lifter', 'discriminator', 'temporal_discriminator')
    temporal.merge_from_dict(
        {f'optim_wrapper.{n}.optimizer.betas': (0.5, 0.9) for n in names})
    cfg = Config.fromfile(betas)
    expected = temporal.to_dict()
    got = {k: v for k, v in cfg.to_dict().items() if k != 'gan_betas'}
    assert got == expected
    # And the Runner hands the betas to each Adam it builds.
    runner = Runner.from_cfg(tiny_cfg(str(tmp_path), max_epochs=1, config=betas))
    wrappers = runner.build_optim_wrapper(runner.optim_wrapper)
    for name in names:
        optimizer = wrappers[name].optimizer
        assert type(optimizer).__name__ == 'Adam'
        assert all(g['betas'] == (0.5, 0.9) for g in optimizer.param_groups), name


def test_lsgan_betas_config_is_the_betas_config_with_least_squares_gans(tmp_path):
    """Its seeds ran as the betas config with the two gan_type options; the file must be
    exactly that, and both discriminators must get the least-squares objective."""
    from mmengine.config import Config

    from mmunsup3d.models.losses import GANLoss

    path = osp.join(CFG, 'unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-100e_pybullet-mocap.py')
    betas = Config.fromfile(
        osp.join(CFG, 'unsup3d_reslifter-2ddisc-tdisc-betas05_1xb256-100e_pybullet-mocap.py'))
    betas.merge_from_dict({'model.gan_loss.gan_type': 'lsgan',
                           'model.temporal_gan_loss.gan_type': 'lsgan'})
    assert Config.fromfile(path).to_dict() == betas.to_dict()
    runner = Runner.from_cfg(tiny_cfg(str(tmp_path), max_epochs=1, config=path))
    for name in ('gan_loss', 'temporal_gan_loss'):
        loss = getattr(runner.model, name)
        assert isinstance(loss, GANLoss) and loss.gan_type == 'lsgan', name
        # Least squares: a fake scored 0 costs the generator (0 - 1)^2 = 1 (vanilla: log 2)
        # and the discriminator ((1 - 1)^2 + (0 - 0)^2) / 2 = 0 for real 1, fake 0.
        assert loss(torch.zeros(4)).item() == pytest.approx(loss.loss_weight)
        assert loss.discriminator_loss(torch.ones(4), torch.zeros(4)).item() == 0.0


def test_200e_config_is_the_lsgan_betas_config_trained_twice_as_long():
    """Its seeds 0-4 ran as the 100-epoch file with train_cfg.max_epochs=200. Only the loop
    length may differ: validation and checkpoints stay every 100 epochs, so the run's
    epoch_100.pth is the 100-epoch config's checkpoint."""
    from mmengine.config import Config

    path = osp.join(CFG, 'unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-200e_pybullet-mocap.py')
    short = Config.fromfile(
        osp.join(CFG, 'unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-100e_pybullet-mocap.py'))
    short_dict = short.to_dict()
    short.merge_from_dict({'train_cfg.max_epochs': 200})
    cfg = Config.fromfile(path)
    assert cfg.to_dict() == short.to_dict()
    assert cfg.to_dict() != short_dict
    assert (cfg.train_cfg.max_epochs, cfg.train_cfg.val_interval) == (200, 100)
    assert cfg.default_hooks.checkpoint.interval == 100
