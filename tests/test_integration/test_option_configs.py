"""Short training smoke tests of every ablation option, through its own config and the Runner."""
import os.path as osp

import numpy as np
import pytest
from mmengine.runner import Runner

from helpers import REPO, tiny_cfg

CFG = osp.join(REPO, 'configs', 'unsup3d')


@pytest.mark.parametrize('name, logged', [
    ('unsup3d_reslifter-selfconsist_1xb256-100e_pybullet-mocap.py', {'loss_2d', 'loss_3d'}),
    ('unsup3d_reslifter-2ddisc-semi10_1xb256-100e_pybullet-mocap.py', {'loss_sup', 'loss_disc'}),
    ('unsup3d_reslifter-2ddisc-conf_1xb256-100e_pybullet-mocap.py', {'loss_adv', 'loss_disc'}),
    ('unsup3d_reslifter-2ddisc-tdisc-elevation_1xb256-100e_pybullet-mocap.py',
     {'elevation_deg', 'loss_temporal', 'loss_tdisc'}),
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
