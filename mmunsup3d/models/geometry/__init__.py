"""Kept for existing imports: pure camera geometry lives in :mod:`mmunsup3d.structures`."""
from ...structures.geometry import (euler_to_rotmat, lift_to_3d, normalize_2d,
                                    normalize_2d_masked, project, retilt_rotations, root_center,
                                    rotate, sample_rotations)

__all__ = [
    'normalize_2d', 'lift_to_3d', 'euler_to_rotmat', 'sample_rotations', 'rotate', 'project',
    'root_center', 'retilt_rotations', 'normalize_2d_masked'
]
