"""Loss components of the unsupervised lifter, each a registered ``nn.Module`` with
``loss_weight`` and ``loss_name`` (the key it is logged under)."""
from .base_loss import WeightedLoss
from .chirality_loss import ChiralityLoss
from .consistency_loss import (ReprojectionConsistencyLoss, RotationConsistencyLoss,
                               mean_joint_distance)
from .gan_loss import GANLoss
from .regularization_loss import (AdapterResidualLoss, BoneSymmetryLoss, ElevationRegressionLoss,
                                  R1GradientPenalty, bone_asymmetry, torso_elevation)
from .supervised_loss import ScaleAlignedMPJPELoss, scale_aligned_error

__all__ = [
    'WeightedLoss', 'ReprojectionConsistencyLoss', 'RotationConsistencyLoss', 'GANLoss',
    'R1GradientPenalty', 'ChiralityLoss', 'BoneSymmetryLoss', 'ElevationRegressionLoss',
    'AdapterResidualLoss',
    'ScaleAlignedMPJPELoss', 'mean_joint_distance', 'bone_asymmetry', 'torso_elevation',
    'scale_aligned_error'
]
