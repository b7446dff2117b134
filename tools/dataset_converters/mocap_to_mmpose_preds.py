"""Write a small, SYNTHETIC MMPose 2D predictions JSON (COCO-17) from the embedded mocap.

Usage::

    python tools/dataset_converters/mocap_to_mmpose_preds.py \
        [--out demo/data/mmpose_preds_walk.json] [--clip walk] [--camera 0] \
        [--num-frames 6] [--frame-step 2] [--seed 0] [--src data/pybullet_mocap/h36m17_mocap.npz]

The output has the layout ``MMPoseInferencer(..., pred_out_dir=...)`` writes for a video: a list
of ``{"frame_id": i, "instances": [{"keypoints" (17 x 2, COCO-17 order, pixels),
"keypoint_scores" (17), "bbox" ([[x1, y1, x2, y2]]), "bbox_score"}]}``, one person per frame.
It stands in for a real 2D detector's output in docs/inference.md and the tests; it is not real
data. How it is made:

* frames: the TEST part of clip ``--clip`` exactly as ``MocapProjectionDataset(split='test',
  clips=[clip])`` selects it (the last 20 % after a 10-frame gap), its first ``--num-frames``
  frames every ``--frame-step``-th; no training frame is read;
* camera: test camera ``--camera`` of that dataset (the same Human3.6M-like 1000 x 1000 px
  camera; the script checks that its Human3.6M-17 projection equals the dataset's 2D);
* joints: COCO-17 from the Human3.6M-17 mocap joints by
  ``tools/dataset_converters/mocap_to_coco.py``'s ``h36m_to_coco_world`` (face joints from the
  head's axes, annotator-like hips), projected through that camera;
* noise (generator ``np.random.default_rng([seed, NOISE_TAG])``): Gaussian, std
  ``NOISE_STD * diag`` px per axis (``diag``: the diagonal of the clean joints' bounding box),
  scores ``U(0.8, 0.98)``; and one simulated detector failure, joint
  ``OCCLUDED_JOINT`` (COCO left_wrist) of frame ``OCCLUDED_FRAME`` moved by
  ``OCCLUDED_SHIFT * diag`` px to the right with score ``OCCLUDED_SCORE``, below lift_demo's
  default ``--score-thr 0.3``, so the low-confidence fallback has something to do.

Coordinates are rounded to 0.01 px and scores to 4 decimals; ``bbox`` is the box of the noisy
joints padded by 10 %, ``bbox_score`` 1. Deterministic: the same arguments give the same bytes.
Written atomically (``<out>.part`` then ``os.replace``).
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, REPO)
HERE = osp.dirname(osp.abspath(__file__))
if HERE not in sys.path:  # the sibling converter is a script, not a package module
    sys.path.insert(0, HERE)

from mocap_to_coco import h36m_to_coco_world  # noqa: E402

from mmunsup3d.datasets.cameras import (camera_to_pixel,  # noqa: E402
                                        sample_h36m_like_camera, world_to_camera)
from mmunsup3d.datasets.mocap_dataset import (DEFAULT_MOCAP,  # noqa: E402
                                              MocapProjectionDataset)

DEFAULT_OUT = 'demo/data/mmpose_preds_walk.json'
NOISE_TAG = 0x2D  # separates this noise stream from the dataset's camera streams
NOISE_STD = 0.004  # x bbox diagonal: about 1.5 px for a 1000-px Human3.6M-like camera
SCORE_RANGE = (0.8, 0.98)
OCCLUDED_FRAME = 3
OCCLUDED_JOINT = 9  # COCO left_wrist
OCCLUDED_SHIFT = 0.15  # x bbox diagonal
OCCLUDED_SCORE = 0.08


def select_test_frames(dataset: MocapProjectionDataset, clip: str, num_frames: int,
                frame_step: int) -> np.ndarray:
    """Mocap frame indices of ``clip``'s test part, as ``dataset`` splits it.

    Args:
        dataset: a ``MocapProjectionDataset(split='test', clips=[clip])``.
        clip: the clip name.
        num_frames: how many frames to keep.
        frame_step: keep every ``frame_step``-th test frame.

    Returns:
        ``(num_frames,)`` int frame indices into the clip.

    Raises:
        ValueError: the test part holds fewer than ``num_frames`` frames at that step.
    """
    with np.load(dataset.data_file, allow_pickle=False) as data:
        length = len(data[clip])
    frames = dataset.split_frames(length)['test'][::frame_step]
    if len(frames) < num_frames:
        raise ValueError(f'Clip "{clip}" has {len(frames)} test frame(s) at --frame-step '
                         f'{frame_step}; --num-frames {num_frames} asks for more')
    return frames[:num_frames]


def draw_test_camera(dataset: MocapProjectionDataset, clip: str, camera: int) -> Dict[str, Any]:
    """Test camera ``camera`` of ``clip``, drawn as ``MocapProjectionDataset.load_arrays`` does.

    Raises:
        ValueError: ``camera`` is not one of the dataset's test cameras.
    """
    if not 0 <= camera < dataset.num_test_cameras:
        raise ValueError(f'--camera must be in [0, {dataset.num_test_cameras}) (the test '
                         f'cameras of MocapProjectionDataset), got {camera}')
    with np.load(dataset.data_file, allow_pickle=False) as data:
        names = sorted(str(n) for n in data['clip_names'])
        world = data[clip].astype(np.float64) / 1000.0
    # Same stream as the dataset: keyed by the clip's sorted position, train cameras first.
    rng = np.random.default_rng([dataset.seed, names.index(clip)])
    target = world[:, 0].mean(0) * np.array([1.0, 1.0, 0.0])
    cams = [sample_h36m_like_camera(rng, target)
            for _ in range(dataset.num_train_cameras + dataset.num_test_cameras)]
    return cams[dataset.num_train_cameras + camera]


def make_predictions(src: str = DEFAULT_MOCAP, clip: str = 'walk', camera: int = 0,
                     num_frames: int = 6, frame_step: int = 2,
                     seed: int = 0) -> List[Dict[str, Any]]:
    """Build the predictions list (see the module docstring).

    Args:
        src: the mocap npz (``clip_names`` + one ``(T, 17, 3)`` mm Z-up array per clip).
        clip: clip name.
        camera: index among the dataset's test cameras.
        num_frames: frames to write (> ``OCCLUDED_FRAME``, so the failure is included).
        frame_step: keep every ``frame_step``-th test frame.
        seed: seed of the noise.

    Returns:
        ``[{"frame_id", "instances": [one COCO-17 instance]}]``, ``num_frames`` entries.

    Raises:
        ValueError: bad counts, an unknown clip (as ``KeyError`` from the dataset) or a
            camera index out of range.
        RuntimeError: the re-drawn camera does not reproduce the dataset's 2D.
    """
    if num_frames <= OCCLUDED_FRAME or frame_step < 1:
        raise ValueError(f'--num-frames must be > {OCCLUDED_FRAME} (the frame with the '
                         f'simulated detector failure) and --frame-step >= 1, got '
                         f'{num_frames}, {frame_step}')
    dataset = MocapProjectionDataset(data_file=src, split='test', clips=[clip])
    frames = select_test_frames(dataset, clip, num_frames, frame_step)
    cam = draw_test_camera(dataset, clip, camera)
    with np.load(dataset.data_file, allow_pickle=False) as data:
        world = data[clip].astype(np.float64)[frames] / 1000.0  # (F, 17, 3) metres, Z up

    # Guard against drift from the dataset's camera draw: the Human3.6M-17 projection must be
    # the dataset's own 2D for these frames (rows of test camera `camera`, in frame order).
    h36m_2d = camera_to_pixel(world_to_camera(world, cam['R'], cam['T']), cam['f'], cam['c'])
    if not np.allclose(h36m_2d, _dataset_rows(dataset, clip, frames, camera), atol=1e-3):
        raise RuntimeError('The re-drawn test camera does not reproduce '
                           'MocapProjectionDataset\'s 2D; mocap_to_mmpose_preds.py is out of '
                           'date with mmunsup3d/datasets/mocap_dataset.py')

    clean = camera_to_pixel(world_to_camera(h36m_to_coco_world(world), cam['R'], cam['T']),
                            cam['f'], cam['c'])  # (F, 17, 2) COCO-17 pixels
    rng = np.random.default_rng([seed, NOISE_TAG])
    diag = np.linalg.norm(clean.max(1) - clean.min(1), axis=-1)  # (F,)
    kpts = clean + rng.normal(size=clean.shape) * (NOISE_STD * diag)[:, None, None]
    scores = rng.uniform(*SCORE_RANGE, size=clean.shape[:2])
    kpts[OCCLUDED_FRAME, OCCLUDED_JOINT, 0] += OCCLUDED_SHIFT * diag[OCCLUDED_FRAME]
    scores[OCCLUDED_FRAME, OCCLUDED_JOINT] = OCCLUDED_SCORE
    kpts = np.round(kpts, 2)
    scores = np.round(scores, 4)

    out = []
    for i in range(len(frames)):
        lo, hi = kpts[i].min(0), kpts[i].max(0)
        pad = 0.05 * (hi - lo)  # 10 % in total
        bbox = np.round(np.concatenate([lo - pad, hi + pad]), 2).tolist()
        # MMPose writes bbox as a one-element list of [x1, y1, x2, y2] (split_instances).
        out.append(dict(frame_id=i, instances=[dict(
            keypoints=kpts[i].tolist(), keypoint_scores=scores[i].tolist(), bbox=[bbox],
            bbox_score=1.0)]))
    return out


def _dataset_rows(dataset: MocapProjectionDataset, clip: str, frames: np.ndarray,
                  camera: int) -> np.ndarray:
    """The dataset's ``(F, 17, 2)`` 2D of ``frames`` through test camera ``camera``."""
    action = clip.replace('_', '')
    index = {str(p): i for i, p in enumerate(dataset.arrays['img_paths'])}
    rows = [index[f'mocap_{action}.cam{camera}_{int(f):06d}.jpg'] for f in frames]
    return dataset.arrays['keypoints_2d'][rows].astype(np.float64)


def write_json_atomic(path: str, data: Any) -> None:
    """Write JSON (2-space indent, as MMPose's ``mmengine.dump(..., indent='  ')``) atomically."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # An exclusive temporary file of our own: a fixed '<path>.part' could be someone else's
    # file, which the clean-up below would then delete.
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(osp.abspath(path)),
                               prefix=f'.{osp.basename(path)}.', suffix='.part')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(data, f, indent=2)
            f.write('\n')
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--src', default=DEFAULT_MOCAP, help='mocap npz (pybullet_mocap.py)')
    parser.add_argument('--out', default=DEFAULT_OUT, help='predictions JSON to write')
    parser.add_argument('--clip', default='walk', help='mocap clip name')
    parser.add_argument('--camera', type=int, default=0, help='test camera index')
    parser.add_argument('--num-frames', type=int, default=6, help='frames to write')
    parser.add_argument('--frame-step', type=int, default=2,
                        help='keep every N-th test frame')
    parser.add_argument('--seed', type=int, default=0, help='seed of the 2D noise')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point."""
    args = parse_args(argv)
    preds = make_predictions(args.src, args.clip, args.camera, args.num_frames,
                             args.frame_step, args.seed)
    write_json_atomic(args.out, preds)
    print(f'wrote {args.out}: {len(preds)} frame(s), 1 COCO-17 instance each (SYNTHETIC), '
          f'{osp.getsize(args.out) / 1024:.1f} KiB')
    return 0


if __name__ == '__main__':
    sys.exit(main())
