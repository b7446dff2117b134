"""Anatomical handedness of 3D poses (hand-made poses, hand-computed scores)."""
import math

import numpy as np
import pytest
import torch

from helpers import standing_pose
from mmunsup3d.structures import (H36M_KEYPOINT_NAMES, H36M_PARENTS, chirality_joints,
                                  euler_to_rotmat, leg_handedness)


def _rms(pose: torch.Tensor) -> float:
    return float(np.sqrt((pose.numpy() ** 2).sum(-1).mean()))  # pelvis at the origin


def test_joints_found_through_names_and_parents():
    j = chirality_joints()
    assert (j.root, j.up, j.left_hip, j.right_hip) == (0, 8, 4, 1)
    assert j.legs == ((4, 5, 6), (1, 2, 3))
    # A permuted skeleton: the same joints are found by name, not by position.
    order = list(reversed(range(17)))
    names = [H36M_KEYPOINT_NAMES[i] for i in order]
    new_index = {old: new for new, old in enumerate(order)}
    parents = [-1 if H36M_PARENTS[i] < 0 else new_index[H36M_PARENTS[i]] for i in order]
    jp = chirality_joints(names, parents)
    assert jp.left_hip == new_index[4] and jp.legs[0] == tuple(new_index[i] for i in (4, 5, 6))
    pose = standing_pose()
    assert leg_handedness(pose[order], jp).item() == pytest.approx(
        leg_handedness(pose).item(), abs=1e-12)


def test_correct_pose_score_hand_computed():
    pose = standing_pose(0.1)
    # Each knee sits 0.1 m along the forward axis (-z, towards the camera) from the midpoint
    # of its hip and ankle: 0.2 in all, divided by the RMS joint distance from the pelvis.
    expected = 0.2 / _rms(pose)
    assert leg_handedness(pose).item() == pytest.approx(expected, rel=1e-6)  # eps guards
    assert expected > 0


def test_depth_mirror_negates_and_straight_legs_score_zero():
    pose = standing_pose(0.1)
    mirrored = pose * torch.tensor([1.0, 1.0, -1.0], dtype=pose.dtype)
    assert leg_handedness(mirrored).item() == pytest.approx(-leg_handedness(pose).item())
    assert leg_handedness(standing_pose(0.0)).item() == pytest.approx(0.0, abs=1e-12)


def test_rotation_translation_and_scale_invariance():
    pose = standing_pose(0.07)
    angles = torch.tensor([[0.3, -1.2, 2.0], [math.pi, 0.1, -0.4], [-2.5, 0.9, 0.2]],
                          dtype=torch.float64)
    rot = euler_to_rotmat(angles[:, 0], angles[:, 1], angles[:, 2])
    assert torch.allclose(torch.det(rot), torch.ones(3, dtype=torch.float64))
    rotated = pose @ rot.transpose(-1, -2) * 3.0 + torch.tensor([1.0, -2.0, 5.0],
                                                                dtype=torch.float64)
    scores = leg_handedness(rotated)
    assert scores.shape == (3,)
    assert torch.allclose(scores, leg_handedness(pose).expand(3), rtol=1e-6)


def test_batch_shapes_and_degenerate_pose_is_finite():
    batch = torch.stack([standing_pose(0.1), standing_pose(0.0), torch.zeros(17, 3,
                                                                             dtype=torch.float64)])
    out = leg_handedness(batch.view(1, 3, 17, 3))
    assert out.shape == (1, 3) and torch.isfinite(out).all()
    assert out[0, 2].item() == 0.0


@pytest.mark.parametrize('names,parents,match', [
    (H36M_KEYPOINT_NAMES[:-1], H36M_PARENTS, '16 joint names but 17 parents'),
    (H36M_KEYPOINT_NAMES, (-1, -1) + H36M_PARENTS[2:], 'one root'),
    (tuple('torso' if n == 'thorax' else n for n in H36M_KEYPOINT_NAMES), H36M_PARENTS,
     r"no joint named \['thorax'\]"),
    # right_ankle re-parented to the right hip: the hip has two children, so no leg chain
    (H36M_KEYPOINT_NAMES, H36M_PARENTS[:3] + (1,) + H36M_PARENTS[4:],
     'joint "right_hip" must have exactly one child'),
])
def test_bad_skeletons_are_named(names, parents, match):
    with pytest.raises(ValueError, match=match):
        chirality_joints(names, parents)
