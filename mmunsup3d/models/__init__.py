from . import losses, task_modules  # noqa: F401  (registers the components)
from .adapters import PoseDomainAdapter2D, coco_to_h36m_matrix
from .algorithms import Unsup3DLifter, bone_asymmetry, scale_aligned_error, torso_elevation
from .camera_priors import ElevationPredictor
from .discriminators import PoseDiscriminator2D
from .geometry import (euler_to_rotmat, lift_to_3d, normalize_2d, normalize_2d_masked, project,
                       retilt_rotations, root_center, rotate, sample_rotations)
from .heads import DepthLiftingHead
from .lifters import FlatDepthLifter, ResidualLifter

__all__ = [
    'Unsup3DLifter', 'ResidualLifter', 'DepthLiftingHead', 'FlatDepthLifter',
    'PoseDiscriminator2D', 'scale_aligned_error', 'PoseDomainAdapter2D', 'coco_to_h36m_matrix',
    'ElevationPredictor', 'torso_elevation', 'bone_asymmetry', 'retilt_rotations',
    'normalize_2d_masked',
    'normalize_2d', 'lift_to_3d', 'euler_to_rotmat', 'sample_rotations', 'rotate', 'project',
    'root_center'
]
