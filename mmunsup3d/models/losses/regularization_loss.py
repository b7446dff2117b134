"""Discriminator regularisers and pose priors of the lifter."""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmpose.registry import MODELS
from ...structures.skeleton import H36M_SYMMETRIC_BONES
from .base_loss import WeightedLoss

__all__ = ['R1GradientPenalty', 'BoneSymmetryLoss', 'ElevationRegressionLoss',
           'AdapterResidualLoss', 'bone_asymmetry', 'torso_elevation']


@MODELS.register_module()
class R1GradientPenalty(WeightedLoss):
    """R1 penalty on real samples: ``loss_weight / 2 * |d D(x) / d x|^2`` (Mescheder 2018).

    A discriminator auxiliary loss: it keeps the discriminator from over-fitting a small set of
    real poses. The real batch must require grad before the discriminator is run on it
    (``requires_real_grad``).

    Args:
        loss_weight: ``gamma`` of the penalty.
        loss_name: log suffix; the key is ``<discriminator prefix>_r1`` (``loss_disc_r1``).
    """

    requires_real_grad = True

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'r1') -> None:
        super().__init__(loss_weight, loss_name)

    def forward(self, real: Tensor, real_logits: Tensor) -> Tensor:
        """Penalty on ``(B, ...)`` real inputs given their ``(B,)`` logits (graph kept).

        Returns:
            Scalar penalty, differentiable w.r.t. the discriminator's parameters.
        """
        grad, = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        return 0.5 * self.loss_weight * grad.flatten(1).pow(2).sum(1).mean()


def bone_asymmetry(pose: Tensor,
                   bone_pairs: Sequence[Tuple[Tuple[int, int], Tuple[int, int]]] = (
                       H36M_SYMMETRIC_BONES),
                   eps: float = 1e-8) -> Tensor:
    """Relative length difference of left/right bones, a scale-free symmetry prior.

    ``|l_L - l_R| / ((l_L + l_R) / 2)`` averaged over the bone pairs; a symmetric body scores 0.

    Args:
        pose: ``(B, J, 3)`` poses.
        bone_pairs: ``((a, b), (c, d))`` pairs of symmetric bones ``a-b`` and ``c-d``.
        eps: guards the division for degenerate poses.

    Returns:
        ``(B,)`` mean relative asymmetry per pose.
    """
    idx = torch.as_tensor(bone_pairs, device=pose.device)  # (P, 2, 2)
    bones = pose[:, idx[..., 0]] - pose[:, idx[..., 1]]  # (B, P, 2, 3)
    length = bones.norm(dim=-1)  # (B, P, 2)
    diff = (length[..., 0] - length[..., 1]).abs()
    return (2.0 * diff / (length.sum(-1) + eps)).mean(-1)


def torso_elevation(pose: Tensor, root_idx: int = 0, up_idx: int = 8) -> Tensor:
    """Camera elevation implied by a camera-frame 3D pose whose torso is upright.

    With the camera looking down by ``e`` the world up axis is ``(0, -cos e, -sin e)`` in camera
    coordinates (y down, z forward), so ``e = atan2(-u_z, -u_y)`` for the torso direction ``u``
    (root -> ``up_idx``). A depth-mirrored pose gives ``-e``.

    Args:
        pose: ``(B, J, 3)`` camera-frame poses.
        root_idx: root joint (pelvis).
        up_idx: upper-torso joint (thorax).

    Returns:
        ``(B,)`` elevations in radians.
    """
    up = pose[:, up_idx] - pose[:, root_idx]
    return torch.atan2(-up[:, 2], -up[:, 1])


@MODELS.register_module()
class BoneSymmetryLoss(WeightedLoss):
    """Left/right bone-length symmetry of the first lift (:func:`bone_asymmetry`).

    Args:
        loss_weight: weight of the loss.
        loss_name: log key (``loss_symmetry``).
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_symmetry') -> None:
        super().__init__(loss_weight, loss_name)

    def forward(self, cycle: dict) -> Tensor:
        """``cycle['pose_3d']`` ``(B, J, 3)`` -> weighted batch mean asymmetry."""
        return self.loss_weight * bone_asymmetry(cycle['pose_3d']).mean()


@MODELS.register_module()
class ElevationRegressionLoss(WeightedLoss):
    """Trains the elevation predictor on the elevation implied by the first lift's torso.

    Smooth-L1 between the predicted elevation and :func:`torso_elevation` of the detached first
    lift. Computed only when the cycle carries a prediction (``cycle['elevation_pred']``).

    Args:
        loss_weight: weight of the loss.
        beta: smooth-L1 threshold in radians.
        root_idx: pelvis index.
        up_idx: thorax index.
        loss_name: log key (``loss_elevation``).
    """

    def __init__(self, loss_weight: float = 1.0, beta: float = 0.1, root_idx: int = 0,
                 up_idx: int = 8, loss_name: str = 'loss_elevation') -> None:
        super().__init__(loss_weight, loss_name)
        self.beta = beta
        self.root_idx = root_idx
        self.up_idx = up_idx

    def forward(self, cycle: dict) -> Tensor:
        """``elevation_pred`` ``(B,)`` vs. the torso elevation of ``pose_3d`` ``(B, J, 3)``."""
        target = torso_elevation(cycle['pose_3d'].detach(), self.root_idx, self.up_idx)
        per_sample = F.smooth_l1_loss(cycle['elevation_pred'], target, reduction='none',
                                      beta=self.beta)
        return self.loss_weight * per_sample.mean()


@MODELS.register_module()
class AdapterResidualLoss(WeightedLoss):
    """Squared norm of the 2D domain adapter's learned residual (keeps the fixed joint map).

    The model passes the residual in units of the person's size (normalised poses are about
    ``1/c`` tall, so it multiplies by ``c``).

    Args:
        loss_weight: weight of the loss.
        loss_name: log key (``loss_adapter_reg``).
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_adapter_reg') -> None:
        super().__init__(loss_weight, loss_name)

    def forward(self, residual: Tensor) -> Tensor:
        """``(B, J, 2)`` residual -> weighted mean over joints and samples of ``|r|^2``."""
        return self.loss_weight * residual.pow(2).sum(-1).mean()
