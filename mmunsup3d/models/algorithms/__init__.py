from .base_lifter import BaseDepthLifter
from .unsup3d_lifter import (Unsup3DLifter, bone_asymmetry, scale_aligned_error,
                             torso_elevation)

__all__ = ['BaseDepthLifter', 'Unsup3DLifter', 'scale_aligned_error', 'torso_elevation',
           'bone_asymmetry']
