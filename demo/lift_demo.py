"""Lift 2D keypoints (MMPose predictions or Human3.6M-17 arrays) to 3D and render them.

Usage::

    python demo/lift_demo.py INPUT --out DIR [--config CFG --checkpoint CKPT] [--device cpu]
        [--score-thr 0.3] [--max-frames N] [--overwrite]

``INPUT`` is one of

* an MMPose inferencer predictions JSON (``MMPoseInferencer(..., pred_out_dir=...)``): the
  per-image file (a list of instances) or the video file (a list of
  ``{"frame_id": i, "instances": [...]}``); ``{"instance_info": [...]}`` and
  ``{"predictions": [...]}`` wrappers are accepted too. Every instance has ``keypoints``
  (17 x 2, COCO-17 order, pixels) and ``keypoint_scores`` (17); they are converted to
  Human3.6M-17 by :func:`mmunsup3d.apis.keypoint_convert.coco_to_h36m`;
* an ``.npz`` with ``keypoints`` (N, 17, 2) and optional ``scores`` (N, 17), or a ``.json``
  object ``{"keypoints": [...], "scores": [...]}``, already in Human3.6M-17 pixel order. Each
  row is one frame holding one instance.

Joints scoring below ``--score-thr`` are replaced by the fallbacks of
:func:`mmunsup3d.apis.keypoint_convert.fill_low_confidence` and listed in ``low_confidence``;
an instance whose hips and shoulders are all low is skipped (``null`` in the output, with a
warning), keeping the instance order.

Outputs in ``--out DIR`` (written to a temporary folder next to it and moved in at the end, so
a failed run leaves nothing behind; see :mod:`mmunsup3d.utils.output_dir`). ``DIR`` gets a
marker listing the files written; ``--overwrite`` replaces only those files of an earlier
lift_demo run and keeps anything else in the folder. A non-empty folder without the marker,
``/``, the home folder, the working directory (or a folder above it) and a folder holding the
input are refused:

* ``keypoints_3d.json``: ``{"frames": [{"frame_id", "instances": [{"keypoints_3d" (17 x 3,
  metres, root-relative camera frame: x right, y down, z forward), "keypoints_2d" (17 x 2,
  Human3.6M order, after the fallbacks), "keypoint_names", "low_confidence"} | null]}], ...}``
  in the input's frame and instance order, and ``"chirality_rate"``: the fraction of lifted
  poses that are mirror-handed (:func:`mmunsup3d.apis.chirality_rate`; ``null`` when nothing
  was lifted), also printed;
* ``frame_000000.png``...: the 2D skeletons (left) beside the lifted 3D skeletons (right).
"""
import argparse
import json
import os.path as osp
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from mmunsup3d.apis.keypoint_convert import (  # noqa: E402
    H36M_KEYPOINT_NAMES, H36M_SKELETON, coco_to_h36m, fill_low_confidence)
from mmunsup3d.utils.output_dir import OutputDir, OutputDirError  # noqa: E402

DEFAULT_CONFIG = osp.join(REPO, 'configs', 'unsup3d',
                          'unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py')
DEFAULT_CHECKPOINT = osp.join(
    REPO, 'checkpoints',
    'unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap_20261125-ab4cf0ac.pth')

# One frame: (frame_id, keypoints (K, 17, 2), scores (K, 17) or None), Human3.6M order.
Frame = Tuple[int, np.ndarray, Optional[np.ndarray]]


class InputError(ValueError):
    """A problem with the input file, reported without a traceback."""


# --------------------------------------------------------------------------- input
def _as_array(value: Any, shape_tail: Tuple[int, ...], what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:  # ragged lists
        raise InputError(f'{what} is not a numeric array: {e}') from e
    if arr.dtype.kind not in 'iuf':  # bool, complex, strings, objects
        raise InputError(f'{what} must hold numbers, got {arr.dtype} values')
    arr = arr.astype(np.float64)
    if arr.shape[-len(shape_tail):] != shape_tail or arr.ndim != len(shape_tail) + 1:
        expected = ', '.join(['N'] + [str(s) for s in shape_tail])
        raise InputError(f'{what} must have shape ({expected}) (17 joints), got {arr.shape}')
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f'{what} contains NaN or inf (first at index {tuple(bad.tolist())})')
    return arr


def _parse_instances(instances: Any, where: str) -> Tuple[np.ndarray, np.ndarray]:
    """COCO-17 MMPose instances -> Human3.6M-17 (K, 17, 2) keypoints and (K, 17) scores."""
    if not isinstance(instances, list):
        raise InputError(f'{where}: "instances" must be a list, got {type(instances).__name__}')
    if not instances:
        return np.zeros((0, 17, 2)), np.zeros((0, 17))
    kpts, scores = [], []
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict) or 'keypoints' not in inst:
            raise InputError(f'{where}, instance {i}: expected a dict with "keypoints"')
        k = _as_array([inst['keypoints']], (17, 2), f'{where}, instance {i} keypoints')[0]
        s = inst.get('keypoint_scores')
        s = np.ones(17) if s is None else _as_array(
            [s], (17, ), f'{where}, instance {i} keypoint_scores')[0]
        kpts.append(k)
        scores.append(s)
    return np.stack(kpts), np.stack(scores)


def load_input(path: str, score_thr: float) -> Tuple[str, List[Frame]]:
    """Read an input file into frames of Human3.6M-17 keypoints.

    Args:
        path: ``.json`` (MMPose predictions or ``{"keypoints", "scores"}``) or ``.npz``.
        score_thr: threshold for the head-top rule of :func:`coco_to_h36m`.

    Returns:
        ``(format name, frames)``.

    Raises:
        InputError: missing file, unsupported extension, malformed content, wrong joint count,
            NaN/inf, or no instance at all.
    """
    if not osp.isfile(path):
        raise InputError(f'Input file not found: {path}')
    ext = osp.splitext(path)[1].lower()
    frames: List[Frame] = []
    if ext == '.npz':
        fmt = 'h36m_npz'
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {}
                for k in data.files:
                    try:
                        arrays[k] = data[k]
                    except ValueError as e:
                        if 'allow_pickle' not in str(e):
                            raise
                        raise InputError(f'{path}: array "{k}" holds Python objects (dtype '
                                         'object); only numeric arrays are read (pickled '
                                         'content is never loaded)') from e
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - any unreadable file is an input error
            raise InputError(f'Cannot read {path} as .npz: {e}') from e
        if 'keypoints' not in arrays:
            raise InputError(f'{path} has no "keypoints" array (found {sorted(arrays)})')
        kpts = _as_array(arrays['keypoints'], (17, 2), f'{path}: keypoints')
        scores = arrays.get('scores')
        if scores is not None:
            scores = _as_array(scores, (17, ), f'{path}: scores')
        frames = _rows_to_frames(kpts, scores, path)
    elif ext == '.json':
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise InputError(f'Cannot read {path} as JSON: {e}') from e
        if isinstance(data, dict) and 'keypoints' in data:
            fmt = 'h36m_json'
            kpts = _as_array(data['keypoints'], (17, 2), f'{path}: keypoints')
            scores = data.get('scores')
            if scores is not None:
                scores = _as_array(scores, (17, ), f'{path}: scores')
            frames = _rows_to_frames(kpts, scores, path)
        else:
            if isinstance(data, dict):
                for key in ('instance_info', 'predictions'):
                    if key in data:
                        data = data[key]
                        break
                else:
                    raise InputError(f'{path}: unrecognised JSON object (keys {sorted(data)}); '
                                     'expected MMPose predictions or {"keypoints": ...}')
            if not isinstance(data, list):
                raise InputError(f'{path}: expected a list of instances or frames')
            # A video file is a list of frames {"frame_id", "instances"}; an image file a list
            # of instances {"keypoints", ...}. One frame-like entry makes it a video file, so
            # a frame that lacks "instances" is reported as such.
            is_video = any(isinstance(d, dict) and ('instances' in d or 'frame_id' in d)
                           for d in data)
            fmt = 'mmpose_video' if is_video else 'mmpose_image'
            raw = data if is_video else [dict(frame_id=0, instances=data)]
            for idx, frame in enumerate(raw):
                fid = _frame_id(frame, idx, path)
                coco, coco_sc = _parse_instances(frame['instances'], f'{path}, frame {fid}')
                if len(coco):
                    h36m, h36m_sc = coco_to_h36m(coco, coco_sc, score_thr)
                else:
                    h36m, h36m_sc = coco, coco_sc
                frames.append((fid, h36m, h36m_sc))
    else:
        raise InputError(f'Unsupported input extension "{ext}" ({path}); use .json or .npz')
    if sum(len(k) for _, k, _ in frames) == 0:
        raise InputError(f'{path}: no instances in the predictions (nothing to lift)')
    return fmt, frames


def _frame_id(frame: Any, idx: int, path: str) -> int:
    """The integer ``frame_id`` of entry ``idx`` of a video predictions file."""
    if not isinstance(frame, dict):
        raise InputError(f'{path}, entry {idx}: expected a frame {{"frame_id", "instances"}}, '
                         f'got {type(frame).__name__}')
    if 'instances' not in frame:
        raise InputError(f'{path}, entry {idx}: frame has no "instances" (keys '
                         f'{sorted(frame)})')
    fid = frame.get('frame_id', idx)
    # bool is an int subclass, and 1.5 or "3" are not frame numbers.
    if isinstance(fid, bool) or not isinstance(fid, int):
        raise InputError(f'{path}, entry {idx}: "frame_id" must be an integer, got {fid!r}')
    return fid


def _rows_to_frames(kpts: np.ndarray, scores: Optional[np.ndarray], path: str) -> List[Frame]:
    if scores is not None and scores.shape != kpts.shape[:2]:
        raise InputError(f'{path}: scores must have shape {kpts.shape[:2]}, got {scores.shape}')
    return [(i, kpts[i:i + 1], None if scores is None else scores[i:i + 1])
            for i in range(len(kpts))]


# --------------------------------------------------------------------------- rendering
def _side_colour(a: int, b: int) -> str:
    names = (H36M_KEYPOINT_NAMES[a], H36M_KEYPOINT_NAMES[b])
    if any(n.startswith('left') for n in names):
        return 'tab:blue'
    if any(n.startswith('right') for n in names):
        return 'tab:red'
    return 'tab:gray'


class Renderer:
    """Draws one frame: 2D skeletons (left panel) and lifted 3D skeletons (right panel).

    Axis limits are fixed for the whole sequence: the 2D panel spans every input keypoint,
    the 3D panel +-1 m around each root (instances side by side, 1.2 m apart).

    Args:
        frames_2d: every frame's (K, 17, 2) keypoints, for the fixed 2D limits.
        max_instances: most instances in a frame, for the fixed 3D limits.
    """

    SPACING = 1.2

    def __init__(self, frames_2d: Sequence[np.ndarray], max_instances: int) -> None:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        self.plt = plt
        allk = np.concatenate([k.reshape(-1, 2) for k in frames_2d if len(k)])
        lo, hi = allk.min(0), allk.max(0)
        centre, half = (lo + hi) / 2, max((hi - lo).max() / 2 * 1.1, 1.0)
        self.lim2d = (centre - half, centre + half)
        self.max_instances = max(max_instances, 1)

    def _offset(self, i: int) -> float:
        return (i - (self.max_instances - 1) / 2) * self.SPACING

    def draw(self, path: str, title: str, kpts2d: np.ndarray,
             results: List[Optional[Dict[str, Any]]]) -> None:
        """Write one PNG.

        Args:
            path: output file.
            title: figure title.
            kpts2d: (K, 17, 2) Human3.6M keypoints after the low-confidence fallbacks.
            results: per instance the output dict (``None`` for skipped instances).
        """
        plt = self.plt
        fig = plt.figure(figsize=(11, 5.5), dpi=80)
        ax = fig.add_subplot(1, 2, 1)
        for k, res in zip(kpts2d, results):
            low = set(res['low_confidence']) if res else set(range(17))
            style = '-' if res else ':'
            for a, b in H36M_SKELETON:
                ax.plot(k[[a, b], 0], k[[a, b], 1], style, color=_side_colour(a, b), lw=2)
            ok = [j for j in range(17) if j not in low]
            ax.scatter(k[ok, 0], k[ok, 1], s=12, c='k', zorder=3)
            if low:
                bad = sorted(low)
                ax.scatter(k[bad, 0], k[bad, 1], s=40, marker='x', c='orange', zorder=4)
        ax.set_xlim(self.lim2d[0][0], self.lim2d[1][0])
        ax.set_ylim(self.lim2d[1][1], self.lim2d[0][1])  # image y points down
        ax.set_aspect('equal')
        from matplotlib.lines import Line2D
        fig.legend(handles=[Line2D([], [], color='tab:blue', label='left'),
                           Line2D([], [], color='tab:red', label='right'),
                           Line2D([], [], color='orange', marker='x', ls='',
                                  label='low confidence (replaced)')],
                   loc='lower center', ncol=3, fontsize=8, frameon=False)
        ax.set_title('input 2D (Human3.6M-17)')
        ax.set_xlabel('x [px]')
        ax.set_ylabel('y [px]')

        ax3 = fig.add_subplot(1, 2, 2, projection='3d')
        for i, res in enumerate(results):
            if res is None:
                continue
            p = np.asarray(res['keypoints_3d'])
            # camera (x right, y down, z forward) -> plot (x, depth, up = -y)
            px, py, pz = p[:, 0] + self._offset(i), p[:, 2], -p[:, 1]
            for a, b in H36M_SKELETON:
                ax3.plot(px[[a, b]], py[[a, b]], pz[[a, b]], color=_side_colour(a, b), lw=2)
            ax3.scatter(px, py, pz, s=8, c='k')
        half_x = self.SPACING * (self.max_instances - 1) / 2 + 1.0
        ax3.set_xlim(-half_x, half_x)
        ax3.set_ylim(-1.0, 1.0)
        ax3.set_zlim(-1.0, 1.0)
        ax3.set_box_aspect((half_x, 1.0, 1.0), zoom=0.95)
        ax3.set_yticks([-1.0, 0.0, 1.0])
        ax3.set_zticks([-1.0, -0.5, 0.0, 0.5, 1.0])
        ax3.set_xlabel('x [m]')
        ax3.set_ylabel('z (depth) [m]')
        ax3.set_zlabel('up (-y) [m]')
        ax3.view_init(elev=12, azim=-70)
        ax3.set_title('lifted 3D (root-relative)')
        fig.suptitle(title)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        fig.savefig(path)
        plt.close(fig)


# --------------------------------------------------------------------------- main
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('input', help='MMPose predictions .json, or Human3.6M-17 .npz/.json')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='lifter config')
    parser.add_argument('--checkpoint', default=DEFAULT_CHECKPOINT, help='lifter checkpoint')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='joints scoring below this are replaced and flagged')
    parser.add_argument('--max-frames', type=int, default=None, help='process the first N')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the files of an earlier lift_demo run in --out (only '
                        'folders carrying its marker; other files are kept)')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Lift and render; returns the JSON document written to ``keypoints_3d.json``.

    Raises:
        InputError: bad input or arguments.
    """
    try:
        target = OutputDir(args.out, tool='lift_demo', overwrite=args.overwrite,
                           inputs=[args.input])
    except OutputDirError as e:
        raise InputError(f'--out: {e}') from e
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f'--max-frames must be >= 1, got {args.max_frames}')
    if not 0.0 <= args.score_thr <= 1.0:
        raise InputError(f'--score-thr must be in [0, 1], got {args.score_thr}')
    fmt, frames = load_input(args.input, args.score_thr)
    if args.max_frames is not None:
        frames = frames[:args.max_frames]
        if sum(len(k) for _, k, _ in frames) == 0:
            raise InputError(f'{args.input}: no instances in the first {args.max_frames} '
                             'frame(s) (nothing to lift)')
    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            raise InputError(f'File not found: {path}')

    # Low-confidence fallbacks, then one batched lift over every usable instance.
    filled, lows, valids = [], [], []
    for fid, k, s in frames:
        if len(k):
            f, low, valid = fill_low_confidence(k, s, args.score_thr)
        else:
            f, low, valid = k, [], np.zeros(0, bool)
        for i in np.flatnonzero(~valid):
            warnings.warn(f'frame {fid}, instance {i}: hips and shoulders are all below '
                          f'--score-thr {args.score_thr}; skipped (null in the output)')
        filled.append(f)
        lows.append(low)
        valids.append(valid)
    rows, sc_rows = [], []
    for n, (_, _, s) in enumerate(frames):
        if len(filled[n]):
            rows.append(filled[n][valids[n]])
            sc = np.ones(filled[n].shape[:2]) if s is None else s
            sc_rows.append(sc[valids[n]])
    batch = np.concatenate(rows) if rows else np.zeros((0, 17, 2))
    batch_sc = np.concatenate(sc_rows) if sc_rows else np.zeros((0, 17))

    from mmunsup3d.apis import chirality_rate, init_lifter, lift_keypoints
    model = init_lifter(args.config, args.checkpoint, device=args.device)
    lifted = lift_keypoints(model, batch.astype(np.float32),
                            np.clip(batch_sc, 0.0, 1.0).astype(np.float32)) if len(batch) \
        else np.zeros((0, 17, 3), np.float32)

    doc: Dict[str, Any] = dict(
        input=osp.abspath(args.input), input_format=fmt, config=args.config,
        checkpoint=args.checkpoint, score_thr=args.score_thr,
        keypoint_names=list(H36M_KEYPOINT_NAMES),
        coordinates='root-relative camera frame, metres: x right, y down, z forward',
        # Label-free depth-mirror check: a lifter stuck in the mirrored solution scores near 1.
        # null when every instance was skipped (the rate of no poses is undefined).
        chirality_rate=chirality_rate(lifted) if len(lifted) else None,
        frames=[])
    cursor = 0
    per_frame: List[List[Optional[Dict[str, Any]]]] = []
    for n, (fid, _, _) in enumerate(frames):
        results: List[Optional[Dict[str, Any]]] = []
        for i in range(len(filled[n])):
            if not valids[n][i]:
                results.append(None)
                continue
            results.append(dict(
                keypoints_3d=np.round(lifted[cursor].astype(float), 6).tolist(),
                keypoints_2d=np.round(filled[n][i], 3).tolist(),
                keypoint_names=list(H36M_KEYPOINT_NAMES),
                low_confidence=lows[n][i]))
            cursor += 1
        per_frame.append(results)
        doc['frames'].append(dict(frame_id=fid, instances=results))

    from tqdm import tqdm
    try:
        with target as stage:  # files appear in --out only once all are written
            renderer = Renderer(filled, max(len(f) for f in filled))
            for n, (fid, _, _) in enumerate(tqdm(frames, desc='rendering', unit='frame')):
                renderer.draw(osp.join(stage.path, f'frame_{n:06d}.png'), f'frame {fid}',
                              filled[n], per_frame[n])
            with open(osp.join(stage.path, 'keypoints_3d.json'), 'w') as f:
                json.dump(doc, f)
    except OutputDirError as e:
        raise InputError(f'--out: {e}') from e
    return doc


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status (2 for input errors)."""
    args = parse_args(argv)
    try:
        doc = run(args)
    except InputError as e:
        print(f'lift_demo: error: {e}', file=sys.stderr)
        return 2
    n_inst = sum(len(f['instances']) for f in doc['frames'])
    n_skip = sum(r is None for f in doc['frames'] for r in f['instances'])
    print(f'Lifted {n_inst - n_skip} instance(s) in {len(doc["frames"])} frame(s) '
          f'({n_skip} skipped) -> {osp.abspath(args.out)}')
    if doc['chirality_rate'] is not None:
        from mmunsup3d.evaluation import format_chirality_rate
        print(f'{format_chirality_rate(doc)} of {n_inst - n_skip} lifted poses')
    return 0


if __name__ == '__main__':
    sys.exit(main())
