"""The chirality prior as a registered loss of the cycle output."""
import pytest
import torch

from helpers import standing_pose
from mmpose.registry import MODELS
from mmunsup3d.models.losses import ChiralityLoss
from mmunsup3d.structures import H36M_KEYPOINT_NAMES, H36M_PARENTS, leg_handedness

MIRROR = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)


def test_zero_for_correct_and_straight_positive_for_mirrored():
    loss = MODELS.build(dict(type='ChiralityLoss', loss_weight=2.0))
    assert isinstance(loss, ChiralityLoss) and loss.loss_name == 'loss_chirality'
    good, straight = standing_pose(0.1), standing_pose(0.0)
    batch = torch.stack([good, straight])
    assert loss(dict(pose_3d=batch)).item() == 0.0
    mirrored = torch.stack([good * MIRROR, straight])
    # mean over the batch of relu(-score): (score(good) + 0) / 2, times the weight
    expected = 2.0 * leg_handedness(good).item() / 2
    assert loss(dict(pose_3d=mirrored)).item() == pytest.approx(expected, rel=1e-6)


def test_gradient_pushes_the_knees_forward():
    pose = (standing_pose(0.1) * MIRROR).unsqueeze(0).requires_grad_(True)
    ChiralityLoss()(dict(pose_3d=pose)).backward()
    grad = pose.grad[0]
    assert torch.isfinite(grad).all()
    # Gradient descent moves the knees towards -z (forward for this person).
    for knee in (2, 5):
        assert grad[knee, 2] > 0
    # A correctly handed pose gets no gradient at all (the hinge is inactive).
    good = standing_pose(0.1).unsqueeze(0).requires_grad_(True)
    ChiralityLoss()(dict(pose_3d=good)).backward()
    assert torch.count_nonzero(good.grad) == 0


def test_margin_and_custom_skeleton():
    good = standing_pose(0.1).unsqueeze(0)
    score = leg_handedness(good).item()
    loss = ChiralityLoss(margin=score + 0.5)
    assert loss(dict(pose_3d=good)).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match='no joint named'):
        ChiralityLoss(keypoint_names=[n.upper() for n in H36M_KEYPOINT_NAMES],
                      parents=H36M_PARENTS)
