"""A front/back (chirality) prior that breaks the depth-mirror symmetry of the 2D losses."""
from typing import Optional, Sequence

import torch.nn.functional as F
from torch import Tensor

from mmpose.registry import MODELS
from ...structures.chirality import chirality_joints, leg_handedness
from ...structures.skeleton import H36M_KEYPOINT_NAMES, H36M_PARENTS
from .base_loss import WeightedLoss

__all__ = ['ChiralityLoss']


@MODELS.register_module()
class ChiralityLoss(WeightedLoss):
    """Hinge on the anatomical handedness of the first lift: knees must not bend backwards.

    ``loss_weight * mean_B relu(margin - leg_handedness(pose_3d))`` (see
    :func:`~mmunsup3d.structures.chirality.leg_handedness`). With ``margin = 0`` it is zero for
    correctly handed poses and for straight legs, and positive for depth-mirrored ones; it is
    scale-free and invariant to rotations. Under weak perspective and symmetric random cameras a
    depth mirror is an exact symmetry of every 2D loss; this term is what tells the two apart.

    Args:
        loss_weight: weight of the loss.
        margin: hinge margin on the (scale-free) handedness score.
        keypoint_names: ``(J,)`` joint names of the skeleton (``left_hip`` / ``right_hip``
            and ``up_joint`` must be among them).
        parents: ``(J,)`` parent table; knees and ankles are found through it.
        up_joint: upper-torso joint defining the up axis with the root.
        loss_name: log key (``loss_chirality``).
    """

    def __init__(self, loss_weight: float = 1.0, margin: float = 0.0,
                 keypoint_names: Optional[Sequence[str]] = None,
                 parents: Optional[Sequence[int]] = None, up_joint: str = 'thorax',
                 loss_name: str = 'loss_chirality') -> None:
        super().__init__(loss_weight, loss_name)
        self.margin = float(margin)
        self.joints = chirality_joints(
            H36M_KEYPOINT_NAMES if keypoint_names is None else keypoint_names,
            H36M_PARENTS if parents is None else parents, up_joint)

    def forward(self, cycle: dict) -> Tensor:
        """``cycle['pose_3d']`` ``(B, J, 3)`` -> weighted batch mean of the hinge."""
        score = leg_handedness(cycle['pose_3d'], self.joints)
        return self.loss_weight * F.relu(self.margin - score).mean()
