"""R1 penalty, symmetry, elevation and adapter-residual terms (hand-computed values)."""
import math

import pytest
import torch
from torch import nn

from mmunsup3d.models.losses import (AdapterResidualLoss, BoneSymmetryLoss,
                                     ElevationRegressionLoss, R1GradientPenalty,
                                     ScaleAlignedMPJPELoss, bone_asymmetry, torso_elevation)


def test_r1_on_a_linear_discriminator():
    # D(x) = w . x: the gradient w.r.t. x is w for every sample -> penalty gamma/2 * |w|^2
    disc = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        disc.weight.copy_(torch.tensor([[1.0, -2.0, 2.0]]))
    real = torch.randn(5, 3).requires_grad_(True)
    penalty = R1GradientPenalty(loss_weight=0.1)(real, disc(real).squeeze(-1))
    assert penalty.item() == pytest.approx(0.05 * 9.0)
    penalty.backward()  # differentiable w.r.t. the discriminator (create_graph)
    assert torch.allclose(disc.weight.grad, 0.1 * disc.weight.detach())
    assert R1GradientPenalty.requires_real_grad and R1GradientPenalty().loss_name == 'r1'


def _pose():
    from mmunsup3d.structures import H36M_PARENTS
    p = torch.zeros(1, 17, 3)
    for j, parent in enumerate(H36M_PARENTS):
        if parent >= 0:
            p[0, j] = p[0, parent] + torch.tensor([0.1 * (j % 3), -0.2, 0.05 * j])
    return p


def test_bone_symmetry_of_a_mirrored_skeleton_is_zero():
    from mmunsup3d.structures import H36M_FLIP_PAIRS
    p = _pose()
    sym = p.clone()
    for a, b in H36M_FLIP_PAIRS:  # right side = mirror image of the left side
        sym[0, a] = p[0, b] * torch.tensor([-1.0, 1.0, 1.0])
    sym[0, [0, 7, 8, 9, 10], 0] = 0.0
    assert bone_asymmetry(sym).item() == pytest.approx(0.0, abs=1e-6)
    loss = BoneSymmetryLoss(loss_weight=2.0)
    assert loss(dict(pose_3d=p)).item() == pytest.approx(2 * bone_asymmetry(p).item())
    # doubling one thigh: |2l - l| / (3l / 2) = 2/3 on one of 6 pairs
    longer = sym.clone()
    longer[0, 5:7] += (sym[0, 5] - sym[0, 4])
    assert bone_asymmetry(longer).item() == pytest.approx(2 / 3 / 6, rel=1e-5)


def test_elevation_regression_targets_the_torso():
    pose = torch.zeros(1, 17, 3)
    e = math.radians(15)
    pose[0, 8] = torch.tensor([0.0, -math.cos(e), -math.sin(e)])  # camera looking down by e
    assert torso_elevation(pose).item() == pytest.approx(e, rel=1e-6)
    loss = ElevationRegressionLoss(loss_weight=1.0, beta=0.1)
    pred = torch.tensor([e + 0.5], requires_grad=True)
    # smooth L1 beyond beta: |d| - beta / 2
    assert loss(dict(pose_3d=pose, elevation_pred=pred)).item() == pytest.approx(0.45, rel=1e-5)


def test_adapter_residual_and_supervised_losses():
    res = torch.zeros(2, 17, 2)
    res[0, 3] = torch.tensor([3.0, 4.0])
    assert AdapterResidualLoss(loss_weight=2.0)(res).item() == pytest.approx(2 * 25 / 34)
    target = _pose() - _pose()[:, :1]
    pred = torch.cat([target * 3.0, target + 1.0])
    sup = ScaleAlignedMPJPELoss()
    # the first sample is the target up to scale: error 0; only it is labelled
    assert sup(pred, torch.cat([target, target]), torch.tensor([True, False])).item() == \
        pytest.approx(0.0, abs=1e-6)
    assert sup(pred, torch.cat([target, target]), torch.tensor([False, False])).item() == 0.0
