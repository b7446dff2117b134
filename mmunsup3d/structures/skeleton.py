"""Skeleton tables: joint names, parents, links, left/right pairs, COCO-17 -> Human3.6M-17.

The lowest layer of the package (no torch, no MMPose): models, codecs, datasets and apis all
read their skeleton facts from here.

Human3.6M-17 order (MMPose ``h36m.py``): 0 pelvis (root), 1 right_hip, 2 right_knee,
3 right_ankle, 4 left_hip, 5 left_knee, 6 left_ankle, 7 spine, 8 thorax, 9 neck/nose, 10 head
top, 11 left_shoulder, 12 left_elbow, 13 left_wrist, 14 right_shoulder, 15 right_elbow,
16 right_wrist.
"""
from typing import Dict, Tuple

__all__ = [
    'COCO_KEYPOINT_NAMES', 'H36M_KEYPOINT_NAMES', 'H36M_PARENTS', 'H36M_SKELETON',
    'H36M_FLIP_PAIRS', 'H36M_SYMMETRIC_BONES', 'CORE_JOINTS', 'HEAD_TOP_FACTOR',
    'COCO_TO_H36M_DIRECT'
]

COCO_KEYPOINT_NAMES: Tuple[str, ...] = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
    'left_knee', 'right_knee', 'left_ankle', 'right_ankle')

H36M_KEYPOINT_NAMES: Tuple[str, ...] = (
    'pelvis', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', 'left_knee', 'left_ankle',
    'spine', 'thorax', 'neck_nose', 'head_top', 'left_shoulder', 'left_elbow', 'left_wrist',
    'right_shoulder', 'right_elbow', 'right_wrist')

#: Parent of every Human3.6M joint (-1 for the root).
H36M_PARENTS: Tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

#: MMPose's Human3.6M skeleton links.
H36M_SKELETON: Tuple[Tuple[int, int], ...] = (
    (0, 4), (4, 5), (5, 6), (0, 1), (1, 2), (2, 3), (0, 7), (7, 8), (8, 9), (9, 10), (8, 11),
    (11, 12), (12, 13), (8, 14), (14, 15), (15, 16))

#: Hips and shoulders: an instance with all of them low-confidence is skipped.
CORE_JOINTS: Tuple[int, ...] = (1, 4, 11, 14)

#: Head top = C + HEAD_TOP_FACTOR * (C - nose), C = mid-eyes (or mid-ears).
HEAD_TOP_FACTOR = 2.0

#: Human3.6M index <- COCO index for the directly copied joints.
COCO_TO_H36M_DIRECT: Dict[int, int] = {
    1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 9: 0, 11: 5, 12: 7, 13: 9, 14: 6, 15: 8, 16: 10}

#: Human3.6M-17 left/right joint pairs (horizontal-flip augmentation).
H36M_FLIP_PAIRS: Tuple[Tuple[int, int], ...] = ((1, 4), (2, 5), (3, 6), (11, 14), (12, 15),
                                                (13, 16))

#: Left/right bone pairs ``((parent, joint), (parent, joint))``: hip, thigh, shin, shoulder,
#: upper arm, forearm.
H36M_SYMMETRIC_BONES: Tuple[Tuple[Tuple[int, int], Tuple[int, int]], ...] = tuple(
    ((H36M_PARENTS[a], a), (H36M_PARENTS[b], b)) for a, b in H36M_FLIP_PAIRS)
