"""Body proportions: rescale the bones of a skeleton (numpy, pure).

The embedded motion capture has one skeleton (every DeepMimic clip is retargeted to the same
humanoid), so a lifter trained on it can read depth off the 2D length of a bone whose 3D length
never changes. On a performer with other proportions that cue is wrong: a shorter torso looks
like a torso tilted in depth. Training on bodies with randomly rescaled bones removes the cue.
"""
from typing import Sequence, Tuple

import numpy as np

from .skeleton import H36M_FLIP_PAIRS, H36M_PARENTS

__all__ = ['sample_bone_scales', 'rescale_bones']


def _topological_order(parents: Sequence[int]) -> Tuple[int, ...]:
    """Joint indices ordered so that every parent comes before its children."""
    order, placed = [], set()
    remaining = list(range(len(parents)))
    while remaining:
        progressed = False
        for j in list(remaining):
            if parents[j] < 0 or parents[j] in placed:
                order.append(j)
                placed.add(j)
                remaining.remove(j)
                progressed = True
        if not progressed:
            raise ValueError(f'parents {tuple(parents)} contain a cycle or an out-of-range index')
    return tuple(order)


def sample_bone_scales(rng: np.random.Generator,
                       std: float,
                       parents: Sequence[int] = H36M_PARENTS,
                       flip_pairs: Sequence[Tuple[int, int]] = H36M_FLIP_PAIRS) -> np.ndarray:
    """Draw one body: a length factor per bone, log-normal, equal for left/right partners.

    Args:
        rng: NumPy generator.
        std: standard deviation of ``log(factor)`` (0 gives all ones).
        parents: ``(J,)`` parent index per joint (-1 for the root).
        flip_pairs: left/right joint pairs whose bones (to their parents) share a factor.

    Returns:
        ``(J,)`` factors; entry ``j`` scales the bone ``parents[j] -> j`` (1 for the root).
    """
    if not np.isfinite(std) or std < 0:
        raise ValueError(f'sample_bone_scales: std must be a finite number >= 0, got {std}')
    scales = np.exp(rng.normal(0.0, std, size=len(parents)))
    for left, right in flip_pairs:
        scales[right] = scales[left]
    scales[[j for j, p in enumerate(parents) if p < 0]] = 1.0
    return scales


def rescale_bones(joints: np.ndarray, scales: np.ndarray,
                  parents: Sequence[int] = H36M_PARENTS) -> np.ndarray:
    """Scale every bone's length, keeping its direction and the root in place.

    Args:
        joints: ``(..., J, 3)`` positions.
        scales: ``(J,)`` factor per bone ``parents[j] -> j`` (the root's entry is unused).
        parents: ``(J,)`` parent index per joint (-1 for the root).

    Returns:
        ``(..., J, 3)`` positions of the rescaled body (float64).
    """
    joints = np.asarray(joints, dtype=np.float64)
    scales = np.asarray(scales, dtype=np.float64)
    if joints.shape[-2] != len(parents) or scales.shape != (len(parents),):
        raise ValueError(f'rescale_bones: joints {joints.shape} and scales {scales.shape} do not '
                         f'match {len(parents)} parents')
    out = joints.copy()
    for j in _topological_order(parents):
        p = parents[j]
        if p >= 0:
            out[..., j, :] = out[..., p, :] + scales[j] * (joints[..., j, :] - joints[..., p, :])
    return out
