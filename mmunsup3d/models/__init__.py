from .algorithms import Unsup3DLifter, scale_aligned_error
from .discriminators import PoseDiscriminator2D
from .geometry import (euler_to_rotmat, lift_to_3d, normalize_2d, project, root_center, rotate,
                       sample_rotations)
from .heads import DepthLiftingHead
from .lifters import FlatDepthLifter, ResidualLifter

__all__ = [
    'Unsup3DLifter', 'ResidualLifter', 'DepthLiftingHead', 'FlatDepthLifter',
    'PoseDiscriminator2D', 'scale_aligned_error',
    'normalize_2d', 'lift_to_3d', 'euler_to_rotmat', 'sample_rotations', 'rotate', 'project',
    'root_center'
]
