"""Write 2D keypoints of the mocap (any split or clip range) and their 3D ground truth.

Usage::

    python tools/dataset_converters/mocap_to_2d.py --split train|test|all \
        [--clips walk run] [--frames all|first-half|second-half] \
        [--preds-out OUT.json] [--npz-out OUT.npz] [--npz-format h36m17|coco17] \
        [--gt-out OUT_gt.npz] [--corrupt] [--noise-config CFG] [--seed 0] \
        [--src data/pybullet_mocap/h36m17_mocap.npz] [--camera-seed 0] [--frame-step 1] \
        [--overwrite]

For experiments with ``Keypoints2DDataset`` (``mmunsup3d/datasets/keypoints_2d.py``): train on
"your" 2D and evaluate against the 3D it came from. The data are SYNTHETIC projections of the
embedded mocap (or of a BVH-converted npz, ``tools/dataset_converters/bvh_to_mocap.py``, passed
as ``--src``), made exactly as ``MocapProjectionDataset`` makes them:

* rows: for each side of ``--split`` (``all``: the training side, then the test side), each
  clip of ``--clips`` (default: all, in sorted order) and each camera of that side, the frames
  ``MocapProjectionDataset(split=side, clips=[clip], seed=--camera-seed,
  frame_step=--frame-step)`` selects (protocol ``tail``: the first ~80 % for training, the last
  20 % after a 10-frame gap for testing), seen through that camera. ``--frames first-half``
  keeps the first ``L // 2`` of the ``L`` frames of every such stream, ``second-half`` the
  rest. One stream (side, clip, camera) is one sequence: ``sequence_ids`` count the streams
  from 0 in row order;
* 2D: the dataset's Human3.6M-17 pixels, or COCO-17 pixels from
  ``tools/dataset_converters/mocap_to_coco.py``'s ``h36m_to_coco_world`` projected through the
  same camera (the script checks that its Human3.6M-17 projection equals the dataset's 2D);
  scores 1;
* ``--corrupt``: detector-like corruption by ``KeypointNoise2D`` with the ``keypoint_noise``
  settings of ``--noise-config`` (default: the confidence-aware config,
  ``std=0.03, outlier_prob=0.03, outlier_std=0.3, drop_prob=0.03``), applied to the
  root-centred pixel pose (Human3.6M-17: the pelvis; COCO-17: the mid-hip point, with the
  mid-shoulder point as the face's and the shoulders' parent), torch seeded with ``--seed``;
  scores fall with the error and dropped joints score 0. Each joint layout written gets its
  own draw;
* 3D (``--gt-out``): the dataset's root-relative camera-frame 3D in metres, row by row.

Outputs (at least one of ``--preds-out`` / ``--npz-out``):

* ``--preds-out``: MMPose inferencer video predictions, COCO-17: ``[{"frame_id": i,
  "instances": [{"keypoints", "keypoint_scores", "bbox": [[x1, y1, x2, y2]], "bbox_score",
  "track_id"}]}]``, one frame per row (``frame_id`` = row), ``track_id`` = the row's sequence
  id; coordinates rounded to 0.01 px, scores to 4 decimals;
* ``--npz-out``: ``keypoints`` ``(N, 17, 2)`` float32 pixels in ``--npz-format`` order,
  ``keypoint_scores`` ``(N, 17)``, ``sequence_ids`` ``(N,)`` int64;
* ``--gt-out``: ``keypoints_3d`` ``(N, 17, 3)`` float32 metres (camera frame: x right, y down,
  z forward; pelvis-relative), ``sequence_ids`` ``(N,)`` and ``img_paths`` ``(N,)``
  (``mocap_<clip>.<side>cam<k>_<frame:06d>.jpg``, so MMPose's MPJPE reports each clip),
  aligned row by row with the 2D: ``Keypoints2DDataset(..., gt_file=...)`` reads it.

Deterministic. Every output is written to a temporary file and moved in place with
``os.replace``; an existing output is refused (before anything is computed) unless
``--overwrite``.
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
for _path in (REPO, HERE):  # run as a script from anywhere; HERE for the sibling converter
    if _path not in sys.path:
        sys.path.insert(0, _path)

from mocap_to_coco import h36m_to_coco_world  # noqa: E402

from mmunsup3d.datasets.cameras import (camera_to_pixel,  # noqa: E402
                                        sample_h36m_like_camera, world_to_camera)
from mmunsup3d.datasets.mocap_dataset import (DEFAULT_MOCAP,  # noqa: E402
                                              MocapProjectionDataset, resolve_data_file)
from mmunsup3d.utils.safe_pickle import npz_array, open_npz  # noqa: E402

SPLITS = {'train': ('train', ), 'test': ('test', ), 'all': ('train', 'test')}
FRAME_RANGES = ('all', 'first-half', 'second-half')
LAYOUTS = ('h36m17', 'coco17')
DEFAULT_NOISE_CONFIG = osp.join(REPO, 'configs', 'unsup3d',
                                'unsup3d_reslifter-2ddisc-conf_1xb256-100e_pybullet-mocap.py')
# COCO-17 joints plus a virtual root (17: mid-hips) and neck (18: mid-shoulders), so that
# KeypointNoise2D has a tree to drop joints along; the virtual joints are discarded after.
COCO_NOISE_PARENTS = (18, 0, 0, 1, 2, 18, 18, 5, 6, 7, 8, 17, 17, 11, 12, 13, 14, -1, 17)


# --------------------------------------------------------------------------- rows
def clip_cameras(dataset: MocapProjectionDataset, clip: str, names: List[str]) -> List[dict]:
    """The cameras of ``clip`` on ``dataset``'s side, drawn as ``load_arrays`` draws them."""
    with open_npz(dataset.data_file) as data:
        world = npz_array(data, clip, dataset.data_file).astype(np.float64) / 1000.0
    # Same stream as the dataset: keyed by the clip's sorted position, training cameras first.
    rng = np.random.default_rng([dataset.seed, sorted(names).index(clip)])
    target = world[:, 0].mean(0) * np.array([1.0, 1.0, 0.0])
    cams = [sample_h36m_like_camera(rng, target)
            for _ in range(dataset.num_train_cameras + dataset.num_test_cameras)]
    return cams[:dataset.num_train_cameras] if dataset.split == 'train' else \
        cams[dataset.num_train_cameras:]


def side_rows(src: str, side: str, clip: str, names: List[str], camera_seed: int,
              frame_step: int) -> Dict[str, np.ndarray]:
    """Rows of one clip on one side: every camera's stream, camera after camera.

    Returns:
        ``h36m17`` / ``coco17`` ``(R, 17, 2)`` pixels, ``keypoints_3d`` ``(R, 17, 3)``,
        ``camera`` and ``frame`` ``(R,)`` int, ``position`` ``(R,)`` (row within its stream)
        and ``length`` ``(R,)`` (its stream's length).

    Raises:
        RuntimeError: the re-drawn cameras do not reproduce the dataset's 2D.
    """
    ds = MocapProjectionDataset(data_file=src, split=side, clips=[clip], seed=camera_seed,
                                frame_step=frame_step, with_3d=side == 'train')
    with open_npz(ds.data_file) as data:
        world = npz_array(data, clip, ds.data_file).astype(np.float64) / 1000.0
    frames = ds.split_frames(len(world))[side]
    cams = clip_cameras(ds, clip, names)
    project = [lambda w, c=c: camera_to_pixel(world_to_camera(w, c['R'], c['T']), c['f'], c['c'])
               for c in cams]
    h36m = np.concatenate([p(world[frames]) for p in project])
    if not np.allclose(h36m, ds.arrays['keypoints_2d'], atol=1e-3):
        raise RuntimeError('The re-drawn cameras do not reproduce MocapProjectionDataset\'s 2D; '
                           'mocap_to_2d.py is out of date with mmunsup3d/datasets/'
                           'mocap_dataset.py')
    coco = np.concatenate([p(h36m_to_coco_world(world[frames])) for p in project])
    n, k = len(frames), len(cams)
    return dict(h36m17=h36m, coco17=coco,
                keypoints_3d=ds.arrays['keypoints_3d'].astype(np.float64),
                camera=np.repeat(np.arange(k), n), frame=np.tile(frames, k),
                position=np.tile(np.arange(n), k), length=np.full(n * k, n))


def in_range(position: np.ndarray, length: np.ndarray, frames: str) -> np.ndarray:
    """``(R,)`` bool: rows of the ``frames`` range of their stream (see the module doc)."""
    if frames == 'all':
        return np.ones(len(position), bool)
    first = position < length // 2
    return first if frames == 'first-half' else ~first


def collect_rows(src: str, split: str, clips: Optional[Sequence[str]], frames: str,
                 camera_seed: int = 0, frame_step: int = 1) -> Dict[str, np.ndarray]:
    """All rows of a split / clip / frame range (see the module doc).

    Returns:
        ``h36m17``, ``coco17`` ``(N, 17, 2)``, ``keypoints_3d`` ``(N, 17, 3)``,
        ``sequence_ids`` ``(N,)`` int64 and ``img_paths`` ``(N,)`` str.

    Raises:
        KeyError: an unknown clip. ValueError: nothing selected.
    """
    path = resolve_data_file(src)
    with open_npz(path) as data:
        names = [str(n) for n in npz_array(data, 'clip_names', path).ravel()]
    chosen = sorted(names) if clips is None else sorted(set(clips))
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise KeyError(f'Unknown clip(s) {unknown} in {path}; available: {sorted(names)}')
    parts: List[Dict[str, np.ndarray]] = []
    streams = 0
    for side in SPLITS[split]:
        for clip in chosen:
            rows = side_rows(path, side, clip, names, camera_seed, frame_step)
            rows['stream'] = streams + rows['camera']  # one per (side, clip, camera)
            streams += int(rows['camera'].max()) + 1
            keep = in_range(rows['position'], rows['length'], frames)
            rows = {k: v[keep] for k, v in rows.items()}
            rows['img_paths'] = np.array(
                [f'mocap_{clip.replace("_", "")}.{side}cam{c}_{f:06d}.jpg'
                 for c, f in zip(rows['camera'], rows['frame'])])
            parts.append(rows)
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if not len(out['h36m17']):
        raise ValueError(f'--split {split} --frames {frames} selects no frame of {chosen}')
    # Renumbered from 0 in row order (a half of a one-frame stream is empty).
    out['sequence_ids'] = np.unique(out.pop('stream'), return_inverse=True)[1].astype(np.int64)
    return {k: out[k] for k in ('h36m17', 'coco17', 'keypoints_3d', 'sequence_ids',
                                'img_paths')}


# --------------------------------------------------------------------------- corruption
def noise_settings(config: str) -> Dict[str, Any]:
    """``model.keypoint_noise`` of a config, without its ``type``."""
    from mmengine.config import Config
    noise = Config.fromfile(config).model.get('keypoint_noise')
    if not noise:
        raise ValueError(f'--noise-config {config} has no model.keypoint_noise to reuse')
    return {k: v for k, v in noise.items() if k != 'type'}


def corrupt(kpts: np.ndarray, layout: str, settings: Dict[str, Any],
            seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Detector-like corruption of ``(N, 17, 2)`` pixel poses by ``KeypointNoise2D``.

    Returns:
        ``(corrupted keypoints (N, 17, 2), scores (N, 17))``.
    """
    import torch
    from mmunsup3d.models.task_modules.augmentations import KeypointNoise2D
    if layout == 'h36m17':
        pose, noise = kpts, KeypointNoise2D(**settings)
    else:  # virtual root and neck (COCO_NOISE_PARENTS), dropped again below
        mid = [kpts[:, [11, 12]].mean(1, keepdims=True), kpts[:, [5, 6]].mean(1, keepdims=True)]
        pose = np.concatenate([kpts] + mid, axis=1)
        noise = KeypointNoise2D(**settings, root_idx=17, parents=COCO_NOISE_PARENTS)
    root = pose[:, noise.root_idx:noise.root_idx + 1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        noisy, scores = noise(torch.from_numpy(pose - root),
                              torch.ones(pose.shape[:2], dtype=torch.float64))
    return (noisy.numpy() + root)[:, :17], scores.numpy()[:, :17]


# --------------------------------------------------------------------------- outputs
def predictions_document(kpts: np.ndarray, scores: np.ndarray,
                         sequence_ids: np.ndarray) -> List[Dict[str, Any]]:
    """MMPose video predictions: one frame per row, ``track_id`` = its sequence id."""
    kpts, scores = np.round(kpts, 2), np.round(scores, 4)
    lo, hi = kpts.min(1), kpts.max(1)
    pad = 0.05 * (hi - lo)  # 10 % in total, as mocap_to_mmpose_preds.py
    boxes = np.round(np.concatenate([lo - pad, hi + pad], axis=1), 2)
    return [dict(frame_id=i, instances=[dict(
        keypoints=k.tolist(), keypoint_scores=s.tolist(), bbox=[b.tolist()], bbox_score=1.0,
        track_id=int(t))]) for i, (k, s, b, t) in enumerate(zip(kpts, scores, boxes,
                                                                sequence_ids))]


def write_atomic(path: str, write: Callable[[Any], None], overwrite: bool) -> None:
    """Write ``path`` through ``write(binary file)`` into a temporary file, then ``os.replace``.

    Raises:
        FileExistsError: ``path`` exists and not ``overwrite``.
    """
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass --overwrite to replace it')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{osp.basename(path)}.', suffix='.part')
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; make the artefact world-readable
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def _layout_2d(rows: Dict[str, np.ndarray], layout: str, args: argparse.Namespace,
               cache: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray]:
    """``(keypoints, scores)`` of one joint layout, corrupted once per layout if asked."""
    if layout not in cache:
        kpts = rows[layout]
        cache[layout] = corrupt(kpts, layout, noise_settings(args.noise_config), args.seed) \
            if args.corrupt else (kpts, np.ones(kpts.shape[:2]))
    return cache[layout]


def write_outputs(rows: Dict[str, np.ndarray], args: argparse.Namespace) -> List[str]:
    """Write every requested output; returns one summary line per file."""
    cache: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    seq, lines = rows['sequence_ids'], []
    if args.preds_out:
        doc = predictions_document(*_layout_2d(rows, 'coco17', args, cache), seq)
        write_atomic(args.preds_out, lambda f: f.write(
            (json.dumps(doc, indent=2) + '\n').encode('utf-8')), args.overwrite)
        lines.append(f'{args.preds_out}: MMPose predictions, COCO-17, {len(doc)} frame(s)')
    if args.npz_out:
        kpts, scores = _layout_2d(rows, args.npz_format, args, cache)
        write_atomic(args.npz_out, lambda f: np.savez_compressed(
            f, keypoints=kpts.astype(np.float32), keypoint_scores=scores.astype(np.float32),
            sequence_ids=seq), args.overwrite)
        lines.append(f'{args.npz_out}: npz, {args.npz_format}, {len(kpts)} row(s)')
    if args.gt_out:
        write_atomic(args.gt_out, lambda f: np.savez_compressed(
            f, keypoints_3d=rows['keypoints_3d'].astype(np.float32), sequence_ids=seq,
            img_paths=rows['img_paths']), args.overwrite)
        lines.append(f'{args.gt_out}: 3D ground truth, {len(seq)} row(s)')
    return lines


# --------------------------------------------------------------------------- CLI
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--src', default=DEFAULT_MOCAP,
                        help='mocap npz (pybullet_mocap.py or bvh_to_mocap.py)')
    parser.add_argument('--split', choices=sorted(SPLITS), required=True,
                        help="MocapProjectionDataset's side(s): train, test or all (both)")
    parser.add_argument('--clips', nargs='+', default=None, help='clip names (default: all)')
    parser.add_argument('--frames', choices=FRAME_RANGES, default='all',
                        help='frames of every (clip, camera) stream of the split')
    parser.add_argument('--preds-out', help='MMPose predictions JSON to write (COCO-17)')
    parser.add_argument('--npz-out', help='npz of 2D keypoints to write')
    parser.add_argument('--npz-format', choices=LAYOUTS, default='h36m17',
                        help='joint order of --npz-out')
    parser.add_argument('--gt-out', help='npz of the 3D ground truth to write')
    parser.add_argument('--corrupt', action='store_true',
                        help='detector-like corruption (KeypointNoise2D of --noise-config)')
    parser.add_argument('--noise-config', default=DEFAULT_NOISE_CONFIG,
                        help='config whose model.keypoint_noise --corrupt uses')
    parser.add_argument('--seed', type=int, default=0, help='seed of the corruption')
    parser.add_argument('--camera-seed', type=int, default=0,
                        help='MocapProjectionDataset seed of the cameras')
    parser.add_argument('--frame-step', type=int, default=1, help='keep every N-th frame')
    parser.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    return parser.parse_args(argv)


def check_outputs(args: argparse.Namespace) -> None:
    """At least one 2D output, distinct paths, none existing unless ``--overwrite``."""
    outs = [p for p in (args.preds_out, args.npz_out, args.gt_out) if p]
    if not (args.preds_out or args.npz_out):
        raise SystemExit('mocap_to_2d.py: give --preds-out and/or --npz-out')
    if len({osp.abspath(p) for p in outs}) != len(outs):
        raise SystemExit(f'mocap_to_2d.py: the outputs must be different files, got {outs}')
    existing = [p for p in outs if osp.exists(p)]
    if existing and not args.overwrite:
        raise SystemExit(f'mocap_to_2d.py: {existing} exist(s); pass --overwrite to replace')
    if args.frame_step < 1:
        raise SystemExit(f'mocap_to_2d.py: --frame-step must be >= 1, got {args.frame_step}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point."""
    args = parse_args(argv)
    check_outputs(args)
    rows = collect_rows(args.src, args.split, args.clips, args.frames, args.camera_seed,
                        args.frame_step)
    for line in write_outputs(rows, args):
        print(f'wrote {line} (SYNTHETIC, {int(rows["sequence_ids"].max()) + 1} sequence(s))')
    return 0


if __name__ == '__main__':
    sys.exit(main())
