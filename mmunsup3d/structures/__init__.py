"""Low-level skeleton tables, keypoint conversion and pure camera geometry (no MMPose)."""
from .body_shape import rescale_bones, sample_bone_scales
from .chirality import ChiralityJoints, chirality_joints, leg_handedness
from .geometry import (euler_to_rotmat, lift_to_3d, normalize_2d, normalize_2d_masked, project,
                       retilt_rotations, root_center, rotate, sample_rotations)
from .keypoint_convert import coco_to_h36m, fill_low_confidence
from .skeleton import (COCO_KEYPOINT_NAMES, COCO_TO_H36M_DIRECT, CORE_JOINTS, H36M_FLIP_PAIRS,
                       H36M_KEYPOINT_NAMES, H36M_PARENTS, H36M_SKELETON, H36M_SYMMETRIC_BONES,
                       HEAD_TOP_FACTOR)

__all__ = [
    'ChiralityJoints', 'chirality_joints', 'leg_handedness',
    'COCO_KEYPOINT_NAMES', 'COCO_TO_H36M_DIRECT', 'CORE_JOINTS', 'H36M_FLIP_PAIRS',
    'H36M_KEYPOINT_NAMES', 'H36M_PARENTS', 'H36M_SKELETON', 'H36M_SYMMETRIC_BONES',
    'HEAD_TOP_FACTOR', 'coco_to_h36m', 'fill_low_confidence', 'euler_to_rotmat', 'lift_to_3d',
    'normalize_2d', 'normalize_2d_masked', 'project', 'retilt_rotations', 'root_center',
    'rotate', 'sample_rotations', 'rescale_bones', 'sample_bone_scales'
]
