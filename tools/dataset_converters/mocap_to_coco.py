"""Render the mocap's TRAINING frames as COCO-17 2D keypoints with a synthetic domain shift.

Usage::

    python tools/dataset_converters/mocap_to_coco.py \
        [--src data/pybullet_mocap/h36m17_mocap.npz] \
        [--out data/pybullet_mocap/coco17_synthetic_train.json] \
        [--num-cameras 2] [--seed 1000] [--frame-step 2]

The output is a COCO-format keypoint annotation file (MMPose ``CocoDataset`` layout, read by
``mmunsup3d.datasets.CocoKeypoints2DDataset``) that imitates unlabelled in-the-wild 2D poses.
It is SYNTHETIC: the shift from ``MocapProjectionDataset``'s 2D is made of

* the COCO-17 joint convention, with annotator-like hip placement (rule below);
* new cameras: ``--num-cameras`` per clip from ``sample_h36m_like_camera`` with the generator
  ``np.random.default_rng([seed, clip_idx])`` (``clip_idx`` = position of the clip among the
  sorted clip names, as in ``MocapProjectionDataset``; default seed 1000, the dataset uses 0),
  each aimed at the mean ground position of the clip's training part;
* detector-like noise and failures (below).

Frames: only the training part of each clip, exactly the frames of
``MocapProjectionDataset(split='train')`` (its ``split_frames`` with the default
``test_fraction=0.2`` and ``gap_frames=10``), every ``--frame-step``-th. The held-out test frames
are never read.

COCO-17 joints from Human3.6M-17 world joints (metres, Z up; H36M indices in brackets):

* shoulders, elbows, wrists, knees, ankles: copied;
* hips: ``hip_coco = hip + 0.2 * (hip - pelvis[0]) + 0.12 * (spine[7] - pelvis[0])``, i.e.
  20 % wider and moved up towards the spine, where COCO annotators mark hips;
* head frame (the head's own axes, so the face follows head turns and nods): ``up =
  normalise(head_top[10] - thorax[8])``; ``forward`` = ``neck[9] - thorax[8]`` made orthogonal
  to ``up`` and normalised; ``left = up x forward`` (so ``forward = left x up``, and
  ``right = forward x up`` as for a person). In the shipped mocap the head sphere is rigid on the
  neck link whose origin is the thorax: head top lies exactly on the link's up axis (0.2775 m
  from the thorax) and joint 9 is the front of the sphere, 0.1025 m forward of that axis, in
  every frame. ``head_top - neck`` would NOT be "up": it is tilted exactly 45 degrees backwards.
  If joint 9 lies within 1 cm of the up axis (other skeletons), ``left`` falls back to
  ``left_shoulder[11] - right_shoulder[14]`` made orthogonal to ``up``. Example: a person
  standing along +z and facing +y has ``up = +z``, ``forward = +y``, ``left = -x``;
* nose = ``neck[9] + 0.04 * forward``;
* eyes = ``nose + 0.035 * up +/- 0.032 * left - 0.02 * forward`` (``+`` for left_eye);
* ears = ``neck[9] + 0.06 * up +/- 0.075 * left - 0.06 * forward`` (``+`` for left_ear).

Noise, per image, with ``diag`` the diagonal of the bounding box of the clean 2D joints (pixels)
and a generator ``np.random.default_rng([seed, clip_idx, cam_idx, 0x5EED])``; each joint is

* missing with probability 0.02: ``x = y = v = 0``, score 0;
* else a detector failure with probability 0.05: moved by a vector of random direction and
  length ``U(0.1, 0.3) * diag`` from its clean position, score ``U(0.02, 0.3)``;
* else Gaussian noise with std ``0.015 * diag`` per axis and score
  ``clip(exp(-0.5 * (err / (0.03 * diag))**2), 0.05, 1) * U(0.85, 1)``, ``err`` the noise's
  length.

Non-missing joints have ``v = 2``. Coordinates are rounded to 0.1 px and scores to 3 decimals.
Each image (``mocap_<clip>.cam<k>_<frame:06d>.jpg``, 1000 x 1000, never written) holds one
person annotation with ``keypoints``, ``keypoint_scores``, ``num_keypoints``, ``bbox`` (the
noisy non-missing joints' box padded by 10 %) and ``area = w * h``. Deterministic; written
atomically (``<out>.part`` then ``os.replace``).
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, REPO)

from mmunsup3d.datasets.cameras import (camera_to_pixel,  # noqa: E402
                                        sample_h36m_like_camera, world_to_camera)
from mmunsup3d.datasets.mocap_dataset import (DEFAULT_MOCAP,  # noqa: E402
                                              MocapProjectionDataset, resolve_data_file)

DEFAULT_OUT = 'data/pybullet_mocap/coco17_synthetic_train.json'
IMAGE_SIZE = 1000
P_MISSING = 0.02
P_FAILURE = 0.05
NOISE_STD = 0.015  # x bbox diagonal
SCORE_SIGMA = 0.03  # x bbox diagonal
NOISE_TAG = 0x5EED  # separates the noise streams from the camera stream

# COCO index <- H36M index for the copied joints.
_COPIED = {5: 11, 6: 14, 7: 12, 8: 15, 9: 13, 10: 16, 13: 5, 14: 2, 15: 6, 16: 3}


def _normalise(v: np.ndarray, eps: float = 1e-9) -> Tuple[np.ndarray, np.ndarray]:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, eps), norm[..., 0]


def head_frame(h36m: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal head axes of Human3.6M-17 world poses (rule in the module docstring).

    Args:
        h36m: ``(..., 17, 3)`` world joints (Z up).

    Returns:
        ``(up, left, forward)``, each ``(..., 3)`` unit vectors with ``forward = left x up``.
    """
    def orthogonal(v: np.ndarray, axis: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        return _normalise(v - (v * axis).sum(-1, keepdims=True) * axis)

    thorax = h36m[..., 8, :]
    up, _ = _normalise(h36m[..., 10, :] - thorax)
    forward, off_axis = orthogonal(h36m[..., 9, :] - thorax, up)
    left = np.cross(up, forward)
    shoulder_left, _ = orthogonal(h36m[..., 11, :] - h36m[..., 14, :], up)
    left = np.where((off_axis < 0.01)[..., None], shoulder_left, left)
    return up, left, np.cross(left, up)


def h36m_to_coco_world(h36m: np.ndarray) -> np.ndarray:
    """COCO-17 world joints from Human3.6M-17 world joints (rule in the module docstring).

    Args:
        h36m: ``(..., 17, 3)`` Human3.6M-17 joints in metres, Z-up world.

    Returns:
        ``(..., 17, 3)`` COCO-17 joints (metres).
    """
    h36m = np.asarray(h36m, dtype=np.float64)
    if h36m.shape[-2:] != (17, 3):
        raise ValueError(f'expected (..., 17, 3) Human3.6M-17 joints, got {h36m.shape}')
    out = np.zeros_like(h36m)
    for c, h in _COPIED.items():
        out[..., c, :] = h36m[..., h, :]
    pelvis, spine = h36m[..., 0, :], h36m[..., 7, :]
    for c, h in ((11, 4), (12, 1)):  # left_hip, right_hip
        hip = h36m[..., h, :]
        out[..., c, :] = hip + 0.2 * (hip - pelvis) + 0.12 * (spine - pelvis)
    up, left, forward = head_frame(h36m)
    neck = h36m[..., 9, :]
    nose = neck + 0.04 * forward
    out[..., 0, :] = nose
    for c, sign in ((1, 1.0), (2, -1.0)):  # eyes
        out[..., c, :] = nose + 0.035 * up + sign * 0.032 * left - 0.02 * forward
    for c, sign in ((3, 1.0), (4, -1.0)):  # ears
        out[..., c, :] = neck + 0.06 * up + sign * 0.075 * left - 0.06 * forward
    return out


def add_detector_noise(clean: np.ndarray,
                       rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector-like noise, failures and missing joints (rule in the module docstring).

    Args:
        clean: ``(N, 17, 2)`` clean pixel coordinates.
        rng: numpy generator (every random array is drawn in full, in a fixed order).

    Returns:
        ``(keypoints (N, 17, 2), visibility (N, 17) int, scores (N, 17))``, rounded to 0.1 px
        and 3 decimals; missing joints are ``0, 0``, visibility 0, score 0.
    """
    n, k = clean.shape[:2]
    diag = np.linalg.norm(clean.max(1) - clean.min(1), axis=-1)[:, None]  # (N, 1)
    noise = rng.normal(size=(n, k, 2)) * (NOISE_STD * diag)[..., None]
    err = np.linalg.norm(noise, axis=-1)
    score = np.clip(np.exp(-0.5 * (err / (SCORE_SIGMA * diag))**2), 0.05, 1.0) * rng.uniform(
        0.85, 1.0, size=(n, k))
    u = rng.uniform(size=(n, k))
    angle = rng.uniform(0.0, 2 * np.pi, size=(n, k))
    length = rng.uniform(0.1, 0.3, size=(n, k)) * diag
    fail_score = rng.uniform(0.02, 0.3, size=(n, k))
    missing = u < P_MISSING
    failure = ~missing & (u < P_MISSING + P_FAILURE)
    displaced = clean + length[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    kpts = np.where(failure[..., None], displaced, clean + noise)
    score = np.where(failure, fail_score, score)
    kpts = np.where(missing[..., None], 0.0, np.round(kpts, 1))
    score = np.where(missing, 0.0, np.round(score, 3))
    vis = np.where(missing, 0, 2)
    return kpts, vis, score


def _bbox(kpts: np.ndarray, vis: np.ndarray) -> List[float]:
    pts = kpts[vis > 0]
    if len(pts) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.05 * (hi - lo)  # 10 % in total
    x, y = lo - pad
    w, h = (hi - lo) + 2 * pad
    return [round(float(x), 1), round(float(y), 1), round(float(w), 1), round(float(h), 1)]


def person_category() -> Dict[str, Any]:
    """MMPose's COCO person category (keypoint names and 1-based skeleton as in COCO files)."""
    from mmunsup3d.datasets.coco_keypoints_2d import coco_metainfo
    meta = coco_metainfo()
    names = [meta['keypoint_id2name'][i] for i in range(meta['num_keypoints'])]
    skeleton = [[int(a) + 1, int(b) + 1] for a, b in meta['skeleton_links']]
    return dict(supercategory='person', id=1, name='person', keypoints=names, skeleton=skeleton)


def train_frames(src: str, frame_step: int) -> Dict[str, np.ndarray]:
    """Training frames of every clip, exactly those of ``MocapProjectionDataset(split='train')``.

    Args:
        src: the mocap npz.
        frame_step: keep every ``frame_step``-th training frame.

    Returns:
        clip name -> ``(F,)`` int frame indices.
    """
    split = MocapProjectionDataset(data_file=src, split='train', frame_step=frame_step)
    with np.load(split.data_file) as data:
        lengths = {str(n): len(data[str(n)]) for n in data['clip_names']}
    return {name: split.split_frames(t)['train'] for name, t in lengths.items()}


def convert(src: str = DEFAULT_MOCAP, num_cameras: int = 2, seed: int = 1000,
            frame_step: int = 2) -> Dict[str, Any]:
    """Build the COCO-format dictionary (see the module docstring).

    Args:
        src: mocap npz (``clip_names`` + one ``(T, 17, 3)`` mm Z-up array per clip).
        num_cameras: new cameras per clip.
        seed: seed of the cameras and the noise.
        frame_step: keep every ``frame_step``-th training frame.

    Returns:
        dict with ``info``, ``images``, ``annotations``, ``categories``.
    """
    if num_cameras < 1 or frame_step < 1:
        raise ValueError(f'num_cameras and frame_step must be >= 1, got {num_cameras}, '
                         f'{frame_step}')
    path = resolve_data_file(src)
    frames_of = train_frames(path, frame_step)
    # The training part's full extent (frame_step 1) only aims the cameras.
    full_train = train_frames(path, 1)
    with np.load(path) as data:
        clips = {str(n): data[str(n)].astype(np.float64) / 1000.0 for n in data['clip_names']}
    images: List[Dict[str, Any]] = []
    anns: List[Dict[str, Any]] = []
    for clip_idx, name in enumerate(sorted(clips)):
        frames = frames_of[name]
        world = clips[name]
        rng = np.random.default_rng([seed, clip_idx])
        target = world[full_train[name], 0].mean(0) * np.array([1.0, 1.0, 0.0])
        cams = [sample_h36m_like_camera(rng, target) for _ in range(num_cameras)]
        coco3d = h36m_to_coco_world(world[frames])
        for cam_idx, cam in enumerate(cams):
            cam_pts = world_to_camera(coco3d, cam['R'], cam['T'])
            if (cam_pts[..., 2] <= 0.1).any():
                raise ValueError(f'Clip "{name}" passes behind new camera {cam_idx}')
            clean = camera_to_pixel(cam_pts, cam['f'], cam['c'])
            noise_rng = np.random.default_rng([seed, clip_idx, cam_idx, NOISE_TAG])
            kpts, vis, scores = add_detector_noise(clean, noise_rng)
            for i, frame in enumerate(frames):
                img_id = len(images) + 1
                images.append(dict(id=img_id, file_name=f'mocap_{name}.cam{cam_idx}_'
                                   f'{int(frame):06d}.jpg', width=IMAGE_SIZE, height=IMAGE_SIZE))
                flat: List[float] = []
                for (x, y), v in zip(kpts[i].tolist(), vis[i].tolist()):
                    flat += [x, y, int(v)]
                bbox = _bbox(kpts[i], vis[i])
                anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=1, iscrowd=0,
                                 keypoints=flat, num_keypoints=int((vis[i] > 0).sum()),
                                 keypoint_scores=scores[i].tolist(), bbox=bbox,
                                 area=round(bbox[2] * bbox[3], 1)))
    info = dict(
        description='SYNTHETIC COCO-17 2D poses rendered from the training frames of '
        'data/pybullet_mocap/h36m17_mocap.npz with new cameras, annotator-like hips and '
        'detector-like noise (tools/dataset_converters/mocap_to_coco.py). Not real data.',
        num_cameras=num_cameras, seed=seed, frame_step=frame_step)
    return dict(info=info, images=images, annotations=anns, categories=[person_category()])


def write_json_atomic(path: str, data: Dict[str, Any]) -> None:
    """Write compact JSON to ``<path>.part`` and rename it to ``path``."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # An exclusive temporary file of our own: a fixed '<path>.part' could be someone else's
    # file, which the clean-up below would then delete.
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(osp.abspath(path)),
                               prefix=f'.{osp.basename(path)}.', suffix='.part')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(data, f, separators=(',', ':'))
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--src', default=DEFAULT_MOCAP, help='mocap npz (pybullet_mocap.py)')
    parser.add_argument('--out', default=DEFAULT_OUT, help='COCO-format JSON to write')
    parser.add_argument('--num-cameras', type=int, default=2, help='new cameras per clip')
    parser.add_argument('--seed', type=int, default=1000, help='seed of cameras and noise')
    parser.add_argument('--frame-step', type=int, default=2,
                        help='keep every N-th training frame')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point."""
    args = parse_args(argv)
    data = convert(args.src, args.num_cameras, args.seed, args.frame_step)
    write_json_atomic(args.out, data)
    print(f'wrote {args.out}: {len(data["annotations"])} annotations '
          f'({len(data["categories"][0]["keypoints"])} keypoints each), '
          f'{osp.getsize(args.out) / 1024:.0f} KiB')
    return 0


if __name__ == '__main__':
    sys.exit(main())
