"""Self-consistency losses of the lift -> rotate -> project -> lift -> rotate-back cycle."""
from torch import Tensor

from mmpose.registry import MODELS
from .base_loss import WeightedLoss

__all__ = ['ReprojectionConsistencyLoss', 'RotationConsistencyLoss', 'mean_joint_distance']


def mean_joint_distance(pred: Tensor, target: Tensor) -> Tensor:
    """Mean Euclidean distance over joints.

    Args:
        pred: ``(B, J, D)`` poses.
        target: ``(B, J, D)`` poses.

    Returns:
        ``(B,)`` per-sample mean joint distance.
    """
    return (pred - target).norm(dim=-1).mean(-1)


@MODELS.register_module()
class ReprojectionConsistencyLoss(WeightedLoss):
    """2D consistency: the second lift, rotated back and projected, reproduces the input.

    Args:
        loss_weight: weight of the loss.
        loss_name: key of the loss in the log (``loss_2d``).
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_2d') -> None:
        super().__init__(loss_weight, loss_name)

    def forward(self, cycle: dict) -> Tensor:
        """Weighted batch mean of :func:`mean_joint_distance`.

        Args:
            cycle: the output of ``Unsup3DLifter.cycle`` with ``reprojection`` ``(B, J, 2)``
                and ``input_2d`` ``(B, J, 2)`` (normalised).

        Returns:
            Scalar loss.
        """
        return self.loss_weight * mean_joint_distance(cycle['reprojection'],
                                                      cycle['input_2d']).mean()


@MODELS.register_module()
class RotationConsistencyLoss(WeightedLoss):
    """3D consistency: the lift of the synthetic view equals the rotated first lift.

    Args:
        loss_weight: weight of the loss.
        loss_name: key of the loss in the log (``loss_3d``).
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_3d') -> None:
        super().__init__(loss_weight, loss_name)

    def forward(self, cycle: dict) -> Tensor:
        """Weighted batch mean of :func:`mean_joint_distance` in the virtual camera's frame.

        Args:
            cycle: ``Unsup3DLifter.cycle`` output with ``pose_3d_second`` ``(B, J, 3)`` (the
                second lift, root-centred, rescaled to the first lift's scale) and
                ``pose_3d_rotated`` ``(B, J, 3)`` (the first lift, rotated).

        Returns:
            Scalar loss.
        """
        return self.loss_weight * mean_joint_distance(cycle['pose_3d_second'],
                                                      cycle['pose_3d_rotated']).mean()
