"""Keypoint conversion for lifting: COCO-17 to Human3.6M-17 and low-confidence handling.

Pure numpy: nothing here imports torch or MMPose.

COCO-17 order (MMPose ``coco.py``): 0 nose, 1 left_eye, 2 right_eye, 3 left_ear, 4 right_ear,
5 left_shoulder, 6 right_shoulder, 7 left_elbow, 8 right_elbow, 9 left_wrist, 10 right_wrist,
11 left_hip, 12 right_hip, 13 left_knee, 14 right_knee, 15 left_ankle, 16 right_ankle.

Human3.6M-17 order (MMPose ``h36m.py``): 0 pelvis (root), 1 right_hip, 2 right_knee,
3 right_ankle, 4 left_hip, 5 left_knee, 6 left_ankle, 7 spine, 8 thorax, 9 neck/nose, 10 head
top, 11 left_shoulder, 12 left_elbow, 13 left_wrist, 14 right_shoulder, 15 right_elbow,
16 right_wrist.

Mapping rule of :func:`coco_to_h36m` (every synthesised joint gets the *minimum* score of the
COCO joints it is built from):

* limbs (hips, knees, ankles, shoulders, elbows, wrists) are copied directly;
* pelvis (0) = midpoint of the hips (COCO 11, 12);
* thorax (8) = midpoint of the shoulders (COCO 5, 6);
* spine (7) = midpoint of pelvis and thorax (COCO 5, 6, 11, 12);
* neck/nose (9) = COCO nose (0);
* head top (10) = ``C + HEAD_TOP_FACTOR * (C - nose)`` with ``HEAD_TOP_FACTOR = 2``, i.e.
  the nose-to-``C`` vector extended to three times its length, where ``C`` is the midpoint of
  the eyes (COCO 1, 2). If an eye scores below ``score_thr`` and both ears score at least
  ``score_thr``, ``C`` is the midpoint of the ears (COCO 3, 4) instead. The score is the
  minimum over the nose and the two joints used for ``C``.

Low-confidence rule of :func:`fill_low_confidence` (joints scoring below ``score_thr`` are not
trusted; their position is replaced, their index is reported):

* **core** joints are the hips (1, 4) and shoulders (11, 14). If all four are low the instance
  is unusable (``valid=False``). A single low hip (shoulder) is rebuilt from the trusted one
  plus the shoulder (hip) vector of the same side order: e.g. left hip = right hip +
  (left shoulder - right shoulder); if that pair is not trusted either, it collapses onto the
  trusted one. If both hips (or both shoulders) are low while the other pair is trusted, there
  is no trusted source and the detected positions are kept (still flagged).
* pelvis, spine and thorax are recomputed from the (filled) hips and shoulders as above.
* a low limb joint (knee, ankle, elbow, wrist) copies the bone of its mirror limb:
  ``x_j = x_parent(j) + (x_mirror(j) - x_parent(mirror(j)))`` when the mirror joint and its
  parent are trusted; otherwise it collapses onto its (filled) parent.
* a low neck/nose (9) is extrapolated along the spine: ``thorax + 0.5 * (thorax - spine)``;
  a low head top (10): ``neck + 0.5 * (neck - thorax)`` (after 9 has been filled).

Layout check of :func:`check_keypoint_format` (is this array really COCO-17 / Human3.6M-17?):
in image coordinates (y down) an upright person has the head above the hips and the shoulders
above the knees and ankles. Read in the wrong joint order these relations flip (COCO read as
Human3.6M puts the wrists where the head is; Human3.6M read as COCO puts the knees where the
shoulders are), so when a clear majority of the confident poses contradicts them the array is
reported as not being in the declared layout.
"""
from typing import List, Optional, Tuple

import numpy as np

from .skeleton import (COCO_KEYPOINT_NAMES, COCO_TO_H36M_DIRECT, CORE_JOINTS, H36M_KEYPOINT_NAMES,
                       H36M_PARENTS, H36M_SKELETON, HEAD_TOP_FACTOR)

__all__ = [
    'COCO_KEYPOINT_NAMES', 'H36M_KEYPOINT_NAMES', 'H36M_PARENTS', 'H36M_SKELETON',
    'CORE_JOINTS', 'HEAD_TOP_FACTOR', 'COCO_TO_H36M_DIRECT', 'coco_to_h36m',
    'fill_low_confidence', 'check_keypoint_format', 'KEYPOINT_FORMATS'
]

# Left/right mirror of the Human3.6M limb joints (knees, ankles, elbows, wrists).
_LIMB_MIRROR = {2: 5, 3: 6, 5: 2, 6: 3, 12: 15, 13: 16, 15: 12, 16: 13}


def _check(kpts: np.ndarray, scores: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    kpts = np.asarray(kpts, dtype=np.float64)
    if kpts.ndim != 3 or kpts.shape[1:] != (17, 2):
        raise ValueError(f'keypoints must have shape (N, 17, 2), got {kpts.shape}')
    if scores is None:
        scores = np.ones(kpts.shape[:2])
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != kpts.shape[:2]:
        raise ValueError(f'scores must have shape {kpts.shape[:2]}, got {scores.shape}')
    return kpts, scores


def coco_to_h36m(kpts: np.ndarray,
                 scores: Optional[np.ndarray] = None,
                 score_thr: float = 0.3) -> Tuple[np.ndarray, np.ndarray]:
    """Convert COCO-17 keypoints to the Human3.6M-17 skeleton (rule in the module docstring).

    Args:
        kpts: ``(N, 17, 2)`` COCO-17 keypoints (pixels).
        scores: ``(N, 17)`` COCO-17 confidences; ``None`` means all 1.
        score_thr: threshold used only to choose between mid-eyes and mid-ears for the head top.

    Returns:
        ``(N, 17, 2)`` float64 keypoints and ``(N, 17)`` scores in Human3.6M-17 order.

    Raises:
        ValueError: on wrong shapes.
    """
    kpts, scores = _check(kpts, scores)
    out = np.zeros_like(kpts)
    out_sc = np.zeros_like(scores)
    for h, c in COCO_TO_H36M_DIRECT.items():
        out[:, h] = kpts[:, c]
        out_sc[:, h] = scores[:, c]
    out[:, 0] = (kpts[:, 11] + kpts[:, 12]) / 2
    out_sc[:, 0] = scores[:, [11, 12]].min(1)
    out[:, 8] = (kpts[:, 5] + kpts[:, 6]) / 2
    out_sc[:, 8] = scores[:, [5, 6]].min(1)
    out[:, 7] = (out[:, 0] + out[:, 8]) / 2
    out_sc[:, 7] = scores[:, [5, 6, 11, 12]].min(1)
    # Head top: extrapolate nose -> mid-eyes (mid-ears when an eye is unreliable).
    use_ears = (scores[:, [1, 2]].min(1) < score_thr) & (scores[:, [3, 4]].min(1) >= score_thr)
    pair = np.where(use_ears[:, None], np.array([3, 4]), np.array([1, 2]))
    rows = np.arange(len(kpts))[:, None]
    centre = kpts[rows, pair].mean(1)
    out[:, 10] = centre + HEAD_TOP_FACTOR * (centre - kpts[:, 0])
    out_sc[:, 10] = np.minimum(scores[rows, pair].min(1), scores[:, 0])
    return out, out_sc


def fill_low_confidence(kpts: np.ndarray,
                        scores: Optional[np.ndarray],
                        score_thr: float = 0.3) -> Tuple[np.ndarray, List[List[int]], np.ndarray]:
    """Replace untrusted Human3.6M-17 joints by fallbacks (rule in the module docstring).

    Args:
        kpts: ``(N, 17, 2)`` Human3.6M-17 keypoints.
        scores: ``(N, 17)`` confidences; ``None`` trusts every joint.
        score_thr: joints scoring below it are not trusted.

    Returns:
        ``(filled keypoints (N, 17, 2), low-confidence joint indices per instance, valid (N,)
        bool)``; ``valid`` is False where every core joint (hips, shoulders) is low.

    Raises:
        ValueError: on wrong shapes.
    """
    kpts, scores = _check(kpts, scores)
    out = kpts.copy()
    low = scores < score_thr
    valid = ~low[:, list(CORE_JOINTS)].all(1)
    for n in range(len(out)):
        x, lo = out[n], low[n]
        # Core pairs: hips (R 1, L 4) and shoulders (R 14, L 11), each rebuilt from the other.
        for (r, l), (ro, lo_) in (((1, 4), (14, 11)), ((14, 11), (1, 4))):
            if lo[r] != lo[l]:
                bad, good = (r, l) if lo[r] else (l, r)
                other_bad, other_good = (ro, lo_) if lo[r] else (lo_, ro)
                if not lo[ro] and not lo[lo_]:
                    x[bad] = x[good] + (x[other_bad] - x[other_good])
                else:
                    x[bad] = x[good]
        if lo[[1, 4]].any() or lo[0]:
            x[0] = (x[1] + x[4]) / 2
        if lo[[11, 14]].any() or lo[8]:
            x[8] = (x[11] + x[14]) / 2
        if lo[[1, 4, 11, 14]].any() or lo[7]:
            x[7] = (x[0] + x[8]) / 2
        for j in (2, 3, 5, 6, 12, 13, 15, 16):  # parents come first in this order
            if not lo[j]:
                continue
            m = _LIMB_MIRROR[j]
            p, pm = H36M_PARENTS[j], H36M_PARENTS[m]
            if not lo[m] and not lo[pm]:
                x[j] = x[p] + (x[m] - x[pm])
            else:
                x[j] = x[p]
        if lo[9]:
            x[9] = x[8] + 0.5 * (x[8] - x[7])
        if lo[10]:
            x[10] = x[9] + 0.5 * (x[9] - x[8])
    low_idx = [np.flatnonzero(row).tolist() for row in low]
    return out, low_idx, valid


# --------------------------------------------------------------------------- layout check
#: Declared layouts :func:`check_keypoint_format` knows, with their display names.
KEYPOINT_FORMATS = {'coco17': 'COCO-17', 'h36m17': 'Human3.6M-17'}

# Per layout, relations "group A lies above group B" (image y grows downwards) that hold for an
# upright person and flip when the array is in the other layout: (name A, joints A, name B,
# joints B). Group means are compared, so one badly placed joint does not decide a relation.
_LAYOUT_RULES = {
    'h36m17': (('the head (joints 9, 10)', (9, 10), 'the pelvis and hips (0, 1, 4)', (0, 1, 4)),
               ('the thorax and shoulders (8, 11, 14)', (8, 11, 14),
                'the knees and ankles (2, 3, 5, 6)', (2, 3, 5, 6))),
    'coco17': (('the face (joints 0-4)', (0, 1, 2, 3, 4), 'the hips (11, 12)', (11, 12)),
               ('the shoulders (5, 6)', (5, 6), 'the knees and ankles (13-16)',
                (13, 14, 15, 16))),
}


def _layout_votes(kpts: np.ndarray, rules: tuple, margin: float) -> np.ndarray:
    """Per pose and relation: +1 holds, -1 contradicted, 0 too close to tell.

    Args:
        kpts: ``(M, J, 2)`` finite keypoints, image coordinates (y down).
        rules: relations of :data:`_LAYOUT_RULES`.
        margin: a relation decides only when the two group means differ vertically by more
            than ``margin`` x the pose's extent (lying people give no vote).

    Returns:
        ``(M, R)`` int votes.
    """
    joints = sorted({j for rule in rules for j in rule[1] + rule[3]})
    extent = np.ptp(kpts[:, joints], axis=1).max(-1)
    votes = []
    for _, upper, _, lower in rules:
        drop = kpts[:, list(lower), 1].mean(-1) - kpts[:, list(upper), 1].mean(-1)
        votes.append(np.sign(drop) * (np.abs(drop) > margin * extent))
    return np.stack(votes, -1).astype(int)


def check_keypoint_format(keypoints: np.ndarray,
                          scores: Optional[np.ndarray] = None,
                          keypoint_format: str = 'h36m17',
                          source: str = 'keypoints',
                          score_thr: float = 0.3,
                          max_poses: int = 1000,
                          min_fraction: float = 0.75,
                          margin: float = 0.1) -> None:
    """Refuse 2D keypoints whose anatomy contradicts the declared joint layout.

    Looks at up to ``max_poses`` confident poses (every joint the relations use scores at
    least ``score_thr``), evenly spread over the array, and votes per pose on the relations of
    the module docstring. Poses too flat to tell (lying people) do not vote; upside-down
    people (flips, handstands) and some lying or crawling ones vote against, so the check
    fires only when at least ``min_fraction`` of the voting poses contradict the layout (in
    the embedded mocap, clips of the right layout reach at most 0.6 while people get up from
    lying on their back, upright clips of the wrong layout at least 0.88). Pure numpy,
    vectorised.

    Args:
        keypoints: ``(N, 17, 2)`` image coordinates (pixels, y down) in the declared layout.
        scores: optional ``(N, 17)`` confidences; ``None`` trusts every joint.
        keypoint_format: ``'coco17'`` or ``'h36m17'`` (:data:`KEYPOINT_FORMATS`).
        source: what the keypoints are (a file name, a record), for the message.
        score_thr: joints scoring below it make a pose unfit to vote.
        max_poses: most poses looked at (a sample keeps the check cheap on long inputs).
        min_fraction: share of voting poses that must contradict the layout to raise.
        margin: vertical difference, as a fraction of the pose's extent, below which a
            relation does not vote.

    Raises:
        ValueError: an unknown ``keypoint_format``, wrong shapes, or a clear majority of the
            voting poses contradicting ``keypoint_format``; the message names ``source``, the
            declared layout and the relations that failed.
    """
    if keypoint_format not in _LAYOUT_RULES:
        raise ValueError(f'{source}: unknown keypoint_format {keypoint_format!r}; expected one '
                         f'of {sorted(_LAYOUT_RULES)}')
    kpts, scores = _check(keypoints, scores)
    rules = _LAYOUT_RULES[keypoint_format]
    joints = sorted({j for rule in rules for j in rule[1] + rule[3]})
    usable = np.isfinite(kpts).all((1, 2)) & np.isfinite(scores).all(1) & \
        (scores[:, joints] >= score_thr).all(1)
    idx = np.flatnonzero(usable)
    if len(idx) > max_poses:
        idx = idx[np.linspace(0, len(idx) - 1, max_poses).round().astype(int)]
    if not len(idx):
        return  # nothing confident enough to judge by
    votes = _layout_votes(kpts[idx], rules, margin)
    verdict = votes.sum(-1)
    voting = int((verdict != 0).sum())
    against = verdict < 0
    if not voting or against.sum() < min_fraction * voting:
        return
    broken = [f'{up} below {low} in {int((votes[against, r] < 0).sum())}'
              for r, (up, _, low, _) in enumerate(rules)]
    name = KEYPOINT_FORMATS[keypoint_format]
    others = ' / '.join(v for k, v in KEYPOINT_FORMATS.items() if k != keypoint_format)
    raise ValueError(
        f'{source}: the keypoints do not look like {name}: {int(against.sum())} of {voting} '
        f'confident poses checked contradict its joint order ({"; ".join(broken)} of them; '
        f'image y points down). Is the file in another joint order ({others})? If the people '
        'really are upside down in most frames, skip this check.')
