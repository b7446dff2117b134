"""Cycle losses on hand-made poses."""
import pytest
import torch

from mmpose.registry import MODELS
from mmunsup3d.models.losses import (ReprojectionConsistencyLoss, RotationConsistencyLoss,
                                     mean_joint_distance)


def test_mean_joint_distance_by_hand():
    a = torch.zeros(2, 3, 2)
    b = torch.zeros(2, 3, 2)
    b[0, 0] = torch.tensor([3.0, 4.0])  # distance 5 on one of 3 joints
    b[1] = 1.0                           # sqrt(2) on every joint
    assert torch.allclose(mean_joint_distance(a, b), torch.tensor([5 / 3, 2 ** 0.5]))


def test_consistency_losses_read_the_cycle_output():
    cycle = dict(input_2d=torch.zeros(2, 3, 2), reprojection=torch.ones(2, 3, 2),
                 pose_3d_rotated=torch.zeros(1, 2, 3),
                 pose_3d_second=torch.tensor([[[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]]]))
    loss_2d = MODELS.build(dict(type='ReprojectionConsistencyLoss', loss_weight=5.0))
    assert isinstance(loss_2d, ReprojectionConsistencyLoss) and loss_2d.loss_name == 'loss_2d'
    assert loss_2d(cycle).item() == pytest.approx(5 * 2 ** 0.5)
    loss_3d = RotationConsistencyLoss(loss_weight=0.5, loss_name='my_3d')
    assert loss_3d.loss_name == 'my_3d'
    assert loss_3d(cycle).item() == pytest.approx(0.5 * (3 + 0) / 2)
