"""Anatomical handedness of a 3D pose: the cue that tells a pose from its depth mirror.

People are chiral: with ``up = thorax - pelvis`` and ``lateral = left_hip - right_hip`` the
anatomical forward axis is ``forward = lateral x up`` (right-handed coordinates), and a knee
protrudes along ``+forward`` relative to the midpoint of its hip and ankle. A reflection (such
as negating every depth) flips the sign of the cross product relative to the pose, so a
depth-mirrored pose has its knees bent backwards. Rotations leave the score unchanged.
"""
from dataclasses import dataclass
from typing import Sequence, Tuple

import torch
from torch import Tensor

from .skeleton import H36M_KEYPOINT_NAMES, H36M_PARENTS

__all__ = ['ChiralityJoints', 'chirality_joints', 'leg_handedness']


@dataclass(frozen=True)
class ChiralityJoints:
    """Joint indices the handedness score reads.

    Attributes:
        root: the skeleton's root (parent ``-1``).
        up: upper-torso joint; ``up - root`` is the body's up axis.
        left_hip, right_hip: hips; ``left_hip - right_hip`` is the lateral axis.
        legs: ``(hip, knee, ankle)`` per leg.
    """

    root: int
    up: int
    left_hip: int
    right_hip: int
    legs: Tuple[Tuple[int, int, int], ...]


def _only_child(parents: Sequence[int], joint: int, names: Sequence[str]) -> int:
    children = [j for j, p in enumerate(parents) if p == joint]
    if len(children) != 1:
        raise ValueError(f'joint "{names[joint]}" must have exactly one child in the parent '
                         f'table to form a leg, found {len(children)}')
    return children[0]


def chirality_joints(names: Sequence[str] = H36M_KEYPOINT_NAMES,
                     parents: Sequence[int] = H36M_PARENTS,
                     up_joint: str = 'thorax') -> ChiralityJoints:
    """Find the joints of :func:`leg_handedness` from a skeleton's names and parent table.

    The hips are the joints named ``left_hip`` / ``right_hip``; each leg's knee is the hip's only
    child and its ankle the knee's only child.

    Args:
        names: ``(J,)`` joint names.
        parents: ``(J,)`` parent index per joint, ``-1`` for the root.
        up_joint: name of the upper-torso joint.

    Returns:
        The :class:`ChiralityJoints` of the skeleton.

    Raises:
        ValueError: names and parents disagree in length, or a needed joint is missing.
    """
    names, parents = list(names), list(parents)
    if len(names) != len(parents):
        raise ValueError(f'{len(names)} joint names but {len(parents)} parents')
    roots = [j for j, p in enumerate(parents) if p < 0]
    if len(roots) != 1:
        raise ValueError(f'the parent table must have one root (-1), found {len(roots)}')
    missing = [n for n in (up_joint, 'left_hip', 'right_hip') if n not in names]
    if missing:
        raise ValueError(f'the skeleton has no joint named {missing}; names: {names}')
    legs = []
    for side in ('left', 'right'):
        hip = names.index(f'{side}_hip')
        knee = _only_child(parents, hip, names)
        legs.append((hip, knee, _only_child(parents, knee, names)))
    return ChiralityJoints(root=roots[0], up=names.index(up_joint),
                           left_hip=names.index('left_hip'),
                           right_hip=names.index('right_hip'), legs=tuple(legs))


_H36M = chirality_joints()


def leg_handedness(pose: Tensor, joints: ChiralityJoints = _H36M, eps: float = 1e-8) -> Tensor:
    """Signed, scale-free knee protrusion along the anatomical forward axis.

    ``sum_legs (knee - (hip + ankle) / 2) . forward / |forward|``, divided by the pose's RMS
    joint distance from the root. Positive: correctly handed; negative: mirror-handed; zero for
    straight legs. Invariant to rotation, translation and scale; a reflection negates it.

    Args:
        pose: ``(..., J, 3)`` 3D poses (any right-handed frame: camera or world).
        joints: the skeleton's :class:`ChiralityJoints` (Human3.6M-17 by default).
        eps: guards degenerate poses (coincident hips, zero size).

    Returns:
        ``(...)`` handedness scores (typically 0.1-1 for real poses).
    """
    up = pose[..., joints.up, :] - pose[..., joints.root, :]
    lateral = pose[..., joints.left_hip, :] - pose[..., joints.right_hip, :]
    forward = torch.cross(lateral, up, dim=-1)
    forward = forward / (forward.norm(dim=-1, keepdim=True) + eps)
    protrusion = pose.new_zeros(pose.shape[:-2])
    for hip, knee, ankle in joints.legs:
        bend = pose[..., knee, :] - 0.5 * (pose[..., hip, :] + pose[..., ankle, :])
        protrusion = protrusion + (bend * forward).sum(-1)
    centred = pose - pose[..., joints.root:joints.root + 1, :]
    size = centred.pow(2).sum(-1).mean(-1).sqrt()
    return protrusion / (size + eps)
