import math

import pytest
import torch

from mmunsup3d.models.geometry import (euler_to_rotmat, lift_to_3d, normalize_2d, project,
                                       root_center, rotate, sample_rotations)


def _random_pose_3d(batch=8, joints=17, seed=0):
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(batch, joints, 3, generator=g, dtype=torch.float64) * 0.3
    pose[..., 2] += 10.0
    return pose


def test_normalize_2d_root_and_scale():
    kpts = torch.rand(4, 17, 2, dtype=torch.float64) * 1000
    norm, scale = normalize_2d(kpts, root_idx=0, head_idx=10, c=10.0)
    assert norm.shape == (4, 17, 2) and scale.shape == (4, )
    assert torch.allclose(norm[:, 0], torch.zeros(4, 2, dtype=torch.float64))
    assert torch.allclose(norm[:, 10].norm(dim=-1), torch.full((4, ), 0.1, dtype=torch.float64))
    # Hand-computed: root (2, 3), head (5, 7) -> distance 5 -> scale 0.1 / 5.
    kp = torch.zeros(1, 17, 2, dtype=torch.float64)
    kp[0, 0] = torch.tensor([2.0, 3.0])
    kp[0, 10] = torch.tensor([5.0, 7.0])
    kp[0, 3] = torch.tensor([2.0, 13.0])
    norm, scale = normalize_2d(kp)
    assert scale.item() == pytest.approx(0.02)
    assert norm[0, 3].tolist() == pytest.approx([0.0, 0.2])


def test_normalize_2d_is_translation_and_scale_invariant():
    kpts = torch.rand(3, 17, 2, dtype=torch.float64) * 500
    a, _ = normalize_2d(kpts)
    b, _ = normalize_2d(kpts * 3.7 + torch.tensor([120.0, -40.0], dtype=torch.float64))
    assert torch.allclose(a, b)


def test_lift_to_3d_formula_and_clamp():
    x = torch.tensor([[[0.1, -0.2], [0.3, 0.4]]])
    d = torch.tensor([[0.5, -20.0]])
    out = lift_to_3d(x, d, c=10.0, min_depth=1.0)
    # joint 0: z = 10.5; joint 1: z = max(1, -10) = 1.
    assert torch.allclose(out[0, 0], torch.tensor([1.05, -2.1, 10.5]))
    assert torch.allclose(out[0, 1], torch.tensor([0.3, 0.4, 1.0]))


def test_project_inverts_lift_with_true_depths():
    pose = _random_pose_3d()
    x = project(pose)
    depth_offsets = pose[..., 2] - 10.0
    assert torch.allclose(lift_to_3d(x, depth_offsets, c=10.0), pose)
    assert torch.allclose(project(lift_to_3d(x, depth_offsets)), x)


def test_sample_rotations_orthonormal_det_one_and_ranges():
    g = torch.Generator().manual_seed(0)
    rot = sample_rotations(2000, 140.0, 20.0, generator=g, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).expand(2000, 3, 3)
    assert torch.allclose(rot @ rot.transpose(-1, -2), eye, atol=1e-12)
    assert torch.allclose(torch.det(rot), torch.ones(2000, dtype=torch.float64))
    # Roll leaves the third row, (-cos(el) sin(az), sin(el), cos(el) cos(az)).
    elev = torch.asin(rot[:, 2, 1].clamp(-1, 1))
    assert elev.abs().max().item() <= math.radians(20.0) + 1e-9
    assert elev.abs().max().item() > math.radians(18.0)
    azim = torch.atan2(-rot[:, 2, 0], rot[:, 2, 2])
    assert azim.abs().max().item() <= math.radians(140.0) + 1e-9
    assert azim.max() > math.radians(120) and azim.min() < -math.radians(120)


def test_euler_to_rotmat_hand_computed():
    r = euler_to_rotmat(torch.tensor([math.pi / 2]), torch.zeros(1), torch.zeros(1))[0]
    # Azimuth 90 deg about y (down): the forward axis z goes to +x... x goes to -z.
    assert torch.allclose(r @ torch.tensor([0.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 0.0]),
                          atol=1e-6)
    assert torch.allclose(r @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, -1.0]),
                          atol=1e-6)


def test_rotate_there_and_back_is_identity():
    pose = _random_pose_3d()
    rot = sample_rotations(pose.shape[0], dtype=torch.float64)
    back = rotate(rotate(pose, rot), rot.transpose(-1, -2))
    assert torch.allclose(back, pose)
    # Rotation about the root keeps bone lengths.
    centred = root_center(pose)
    r = rotate(centred, rot)
    assert torch.allclose(r.norm(dim=-1), centred.norm(dim=-1))


def test_identity_rotation_projection_reproduces_input():
    pose = _random_pose_3d()
    x = project(pose)
    root = pose[:, :1]
    rot = torch.eye(3, dtype=torch.float64).expand(pose.shape[0], 3, 3)
    assert torch.allclose(project(rotate(pose - root, rot) + root), x)


def test_gradients_flow_through_the_geometry():
    x = torch.rand(4, 17, 2, dtype=torch.float64)
    d = torch.zeros(4, 17, dtype=torch.float64, requires_grad=True)
    pose = root_center(lift_to_3d(normalize_2d(x)[0], d))
    rot = sample_rotations(4, dtype=torch.float64)
    y, _ = normalize_2d(project(rotate(pose, rot) + torch.tensor([0, 0, 10.0],
                                                                  dtype=torch.float64)))
    y.sum().backward()
    assert d.grad is not None and d.grad.abs().sum() > 0


def test_normalize_2d_rms_mode():
    kpts = torch.rand(5, 17, 2, dtype=torch.float64) * 300
    norm, scale = normalize_2d(kpts, mode='rms', rms_ratio=0.65, c=10.0)
    rms = norm.pow(2).sum(-1).mean(-1).sqrt()
    assert torch.allclose(rms, torch.full((5, ), 0.065, dtype=torch.float64))
    assert torch.allclose(norm[:, 0], torch.zeros(5, 2, dtype=torch.float64))
    # A pose whose head projects onto the root: 'head' mode explodes, 'rms' does not.
    kp = torch.rand(1, 17, 2, dtype=torch.float64) * 100
    kp[0, 10] = kp[0, 0] + 1e-3
    assert normalize_2d(kp, mode='head')[0].abs().max() > 100
    assert normalize_2d(kp, mode='rms')[0].abs().max() < 0.3
    with pytest.raises(ValueError, match="'head' or 'rms'"):
        normalize_2d(kp, mode='bbox')
