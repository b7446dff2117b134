"""Scale-aligned 3D loss for semi- and fully supervised training."""
from typing import Optional

import torch
from torch import Tensor

from mmpose.registry import MODELS
from .base_loss import WeightedLoss

__all__ = ['ScaleAlignedMPJPELoss', 'scale_aligned_error']


def scale_aligned_error(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean per-joint error after the optimal scaling of ``pred`` (N-MPJPE as a loss).

    Args:
        pred: ``(B, J, 3)`` root-centred predictions.
        target: ``(B, J, 3)`` root-centred targets.

    Returns:
        ``(B,)`` mean joint error per sample, in the target's unit.
    """
    scale = (pred * target).sum((-1, -2)) / (pred * pred).sum((-1, -2)).clamp_min(eps)
    return (pred * scale[:, None, None] - target).norm(dim=-1).mean(-1)


@MODELS.register_module()
class ScaleAlignedMPJPELoss(WeightedLoss):
    """N-MPJPE between lifted and ground-truth 3D, over the samples that carry 3D.

    An unsupervised lifter has no metric scale, so the prediction is optimally scaled first.

    Args:
        loss_weight: weight of the loss.
        loss_name: log key (``loss_sup``).
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_sup') -> None:
        super().__init__(loss_weight, loss_name)

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        """Mean of :func:`scale_aligned_error` over labelled samples.

        Args:
            pred: ``(B, J, 3)`` root-centred predictions.
            target: ``(B, J, 3)`` root-centred targets.
            weight: ``(B,)`` bool/0-1 mask of labelled samples (``None``: all).

        Returns:
            Scalar loss; 0 with a graph when no sample is labelled.
        """
        err = scale_aligned_error(pred, target)
        if weight is None:
            weight = torch.ones_like(err, dtype=torch.bool)
        return self.loss_weight * (err * weight).sum() / weight.sum().clamp_min(1)
