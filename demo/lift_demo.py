"""Lift 2D keypoints (MMPose predictions or Human3.6M-17 arrays) to 3D and render them.

Usage::

    python demo/lift_demo.py INPUT --out DIR [--config CFG] [--checkpoint CKPT | ZOO_NAME]
        [--gt GT_FILE] [--image IMAGE | FOLDER] [--video gif|mp4] [--fps 10] [--dpi 100]
        [--device cpu] [--score-thr 0.3] [--clip-scores] [--skip-format-check]
        [--max-frames N] [--render-every K] [--overwrite]

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

``--checkpoint`` is a file, an ``http(s)://`` / ``file://`` URL or a model-zoo name
(``python -m mmunsup3d list`` or :func:`mmunsup3d.utils.zoo.list_models`), resolved
as :func:`mmunsup3d.apis.init_lifter` does: downloaded into the checkpoint cache and verified
against its sha256. With a zoo name and no ``--config`` the entry's own config is used.

Checks before the lifter is loaded (each failure is an error naming the file, frame and
instance, and nothing is written):

* scores must lie in ``[0, 1]``; ``--clip-scores`` clips them instead (RTMPose and other SimCC
  heads report scores somewhat above 1);
* the keypoints must look like the file's joint order (COCO-17 for MMPose predictions,
  Human3.6M-17 for ``.npz`` / ``{"keypoints"}``): when most confident poses have the head below
  the hips or the shoulders below the knees in that order, the file is refused
  (:func:`mmunsup3d.apis.keypoint_convert.check_keypoint_format`; ``--skip-format-check`` lifts
  it anyway, e.g. for people upside down in most frames).

Joints scoring below ``--score-thr`` are replaced by the fallbacks of
:func:`mmunsup3d.apis.keypoint_convert.fill_low_confidence` and listed in ``low_confidence``.
An instance is skipped (``null`` in the output, with a warning naming its frame id and index,
counted in ``"skipped"`` and in the summary), keeping the instance order, when its hips and
shoulders are all low, or when its 2D pose is degenerate (all joints at one point or on one
line, :func:`mmunsup3d.apis.inference.degenerate_poses`: its scale cannot be normalised).

Optional extras:

* ``--gt FILE``: ground-truth 3D, ``(M, 17, 3)`` in the input's Human3.6M-17 joint order and
  camera frame (x right, y down, z forward), one pose per instance of the input in its order
  (frame by frame; ``M`` = the number of frames for ``.npz`` / ``{"keypoints"}`` inputs).
  ``.npy``, ``.npz`` (array ``keypoints_3d``, or its only array) or ``.json`` (the nested list,
  or ``{"keypoints_3d": ...}``); read without unpickling. GT is root-centred (pelvis) and
  drawn dashed over the prediction, which is scaled onto it by the N-MPJPE optimal scale
  ``s = <P, G> / <P, P>`` for display; each title shows the frame's N-MPJPE.
* ``--image FILE`` (one underlay for every frame) or ``--image FOLDER`` (its images sorted by
  file name, exactly one per input frame): drawn under the 2D panel.
* ``--video gif|mp4``: for a sequence (more than one frame) also write ``animation.gif``
  (Pillow) or ``animation.mp4`` (OpenCV's FFmpeg backend, ``mp4v``) at ``--fps``, made of
  the drawn frames.
* ``--max-frames N`` processes the first ``N`` frames; ``--render-every K`` draws a picture of
  every ``K``-th of them only (all are lifted and in the JSON). Above
  :data:`RENDER_WARN_FRAMES` pictures a warning names how many will be drawn.

Outputs in ``--out DIR`` (written to a private staging folder inside it and moved in at the
end, so a failed or interrupted run leaves nothing behind; see
:mod:`mmunsup3d.utils.output_dir`). ``DIR`` gets a marker listing the files written;
``--overwrite`` replaces only those files of an earlier lift_demo run and keeps anything else
in the folder; an output name held by anything lift_demo did not write (a file the marker does
not list, a folder, a symlink) is refused before anything is written. A non-empty folder
without the marker, ``/``, the home folder, the working directory (or a folder above it) and a
folder holding the input, the ``--gt`` file or the ``--image`` file / folder are refused.
Staging folders of killed runs are removed by the next run (SIGTERM and Ctrl-C clean up at
once; exit status 143 after SIGTERM). The outputs:

* ``keypoints_3d.json``: ``{"frames": [{"frame_id", "instances": [{"keypoints_3d" (17 x 3,
  metres, root-relative camera frame: x right, y down, z forward), "keypoints_2d" (17 x 2,
  Human3.6M order, after the fallbacks), "keypoint_names", "low_confidence"} | null]}], ...}``
  in the input's frame and instance order, ``"skipped"`` (``{"low_confidence": n,
  "degenerate": m}``), ``"render_every"``, and ``"chirality_rate"``: the fraction of lifted
  poses that are mirror-handed (:func:`mmunsup3d.apis.chirality_rate`; ``null`` when nothing
  was lifted), also printed. With ``--gt`` every lifted instance also has ``"n_mpjpe"``
  (GT units) and ``"gt_scale"`` (the display scale ``s``), and the document has
  ``"n_mpjpe_mean"``, also printed;
* ``frame_000000.png``... (``frame_<position in the input>``, every ``--render-every``-th
  frame): per frame the 2D input (left), the lifted 3D skeletons seen along
  the camera's optical axis (middle) and from the side, 90 degrees of azimuth away (right: a
  wrong depth shows here); orthographic, left limbs blue, right limbs red, equal axis scales
  in metres;
* ``animation.gif`` / ``animation.mp4`` with ``--video`` (sequences only).
"""
import argparse
import json
import math
import os
import os.path as osp
import signal
import sys
import threading
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from mmunsup3d.apis.keypoint_convert import (  # noqa: E402
    COCO_KEYPOINT_NAMES, H36M_KEYPOINT_NAMES, H36M_SKELETON, check_keypoint_format, coco_to_h36m,
    fill_low_confidence)
from mmunsup3d.utils.output_dir import OutputDir, OutputDirError  # noqa: E402
from mmunsup3d.utils.safe_pickle import load_npy, npz_array  # noqa: E402
from mmunsup3d.utils.zoo import list_models, resolve_model  # noqa: E402

# The recommended model (the metafile's first entry) and its committed weights: read from the
# zoo so that republishing the zoo moves the demo's default with it.
_RECOMMENDED = resolve_model(list_models()[0])
DEFAULT_CONFIG = _RECOMMENDED['config']
DEFAULT_CHECKPOINT = _RECOMMENDED['local']
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.tif', '.tiff', '.webp')

# One frame: (frame_id, keypoints (K, 17, 2), scores (K, 17) or None), Human3.6M order.
Frame = Tuple[int, np.ndarray, Optional[np.ndarray]]


class InputError(ValueError):
    """A problem with the input file, reported without a traceback."""


# --------------------------------------------------------------------------- input
def _as_array(value: Any, shape_tail: Tuple[int, ...], what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, RecursionError) as e:  # ragged or absurdly nested lists
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


def _read_json(path: str, what: str) -> Any:
    """``json.load`` with every failure (including absurd nesting) as an :class:`InputError`."""
    try:
        with open(path) as f:
            return json.load(f)
    except RecursionError as e:
        raise InputError(f'Cannot read {what} as JSON: it is nested too deeply') from e
    except (OSError, ValueError) as e:
        raise InputError(f'Cannot read {what} as JSON: {e}') from e


def _parse_instances(instances: Any, where: str) -> Tuple[np.ndarray, np.ndarray]:
    """COCO-17 MMPose instances -> COCO-17 (K, 17, 2) keypoints and (K, 17) scores."""
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


class _Rows:
    """Every instance of an input as one row: ``(N, 17, 2)`` keypoints, ``(N, 17)`` scores.

    Args:
        frame_ids: ``(F,)`` frame ids.
        counts: ``(F,)`` instances per frame.
        kpts: ``(N, 17, 2)`` keypoints, frame by frame.
        scores: ``(N, 17)`` scores.
        given_scores: False when the file had none (``scores`` are then ones).
    """

    def __init__(self, frame_ids: Sequence[int], counts: Sequence[int], kpts: np.ndarray,
                 scores: np.ndarray, given_scores: bool = True) -> None:
        self.frame_ids, self.counts = list(frame_ids), np.asarray(counts, int)
        self.kpts, self.scores, self.given_scores = kpts, scores, given_scores
        self.row_frame = np.repeat(np.arange(len(self.counts)), self.counts)
        starts = np.cumsum(self.counts) - self.counts
        self.row_instance = np.arange(len(kpts)) - np.repeat(starts, self.counts)

    def where(self, row: int) -> str:
        """``'frame <id>, instance <i>'`` of a row."""
        return f'frame {self.frame_ids[self.row_frame[row]]}, instance {self.row_instance[row]}'

    def frames(self, kpts: np.ndarray, scores: Optional[np.ndarray]) -> List[Frame]:
        """Rows (possibly converted) back into frames."""
        cuts = np.cumsum(self.counts)[:-1]
        ks = np.split(kpts, cuts)
        ss = np.split(scores, cuts) if scores is not None else [None] * len(ks)
        return list(zip(self.frame_ids, ks, ss))


def _check_rows(rows: _Rows, path: str, joint_names: Sequence[str], clip_scores: bool) -> None:
    """Coordinates lift_keypoints accepts and scores in ``[0, 1]``, naming the frame/instance.

    With ``clip_scores`` out-of-range scores are clipped into ``[0, 1]`` instead (in place).
    """
    from mmunsup3d.apis.inference import MAX_ABS_COORD
    too_far = (np.abs(rows.kpts) > MAX_ABS_COORD).any((1, 2))
    if too_far.any():
        r = int(np.flatnonzero(too_far)[0])
        raise InputError(f'{path}, {rows.where(r)}: keypoints exceed |{MAX_ABS_COORD:g}| px '
                         f'(max {np.abs(rows.kpts[r]).max():g}); expected pixel coordinates')
    outside = (rows.scores < 0.0) | (rows.scores > 1.0)
    if not outside.any():
        return
    if clip_scores:
        np.clip(rows.scores, 0.0, 1.0, out=rows.scores)
        return
    r, j = (int(v) for v in np.argwhere(outside)[0])
    raise InputError(f'{path}, {rows.where(r)}: scores must lie in [0, 1]; joint {j} '
                     f'({joint_names[j]}) has {rows.scores[r, j]:g} ({int(outside.sum())} '
                     'out of range in all). Some 2D models (RTMPose, other SimCC heads) report '
                     'scores above 1: pass --clip-scores to clip them into [0, 1]')


def _check_format(rows: _Rows, keypoint_format: str, path: str, score_thr: float) -> None:
    try:
        check_keypoint_format(rows.kpts, rows.scores, keypoint_format, source=path,
                              score_thr=score_thr)
    except ValueError as e:
        raise InputError(f'{e} (lift_demo: --skip-format-check)') from e


def load_input(path: str, score_thr: float, clip_scores: bool = False,
               check_format: bool = True) -> Tuple[str, List[Frame]]:
    """Read an input file into frames of Human3.6M-17 keypoints.

    Args:
        path: ``.json`` (MMPose predictions or ``{"keypoints", "scores"}``) or ``.npz``.
        score_thr: threshold for the head-top rule of :func:`coco_to_h36m` and for the poses
            the layout check trusts.
        clip_scores: clip scores outside ``[0, 1]`` instead of refusing them.
        check_format: refuse keypoints whose anatomy contradicts the file's joint order
            (COCO-17 for MMPose predictions, Human3.6M-17 otherwise; see
            :func:`mmunsup3d.apis.keypoint_convert.check_keypoint_format`).

    Returns:
        ``(format name, frames)``.

    Raises:
        InputError: missing file, unsupported extension, malformed content, wrong joint count,
            NaN/inf, coordinates beyond ``MAX_ABS_COORD``, scores outside ``[0, 1]``, keypoints
            in another joint order, or no instance at all.
    """
    if not osp.isfile(path):
        raise InputError(f'Input file not found: {path}')
    ext = osp.splitext(path)[1].lower()
    if ext == '.npz':
        fmt, rows, coco = 'h36m_npz', _h36m_rows(*_read_npz(path), path), False
    elif ext == '.json':
        data = _read_json(path, path)
        if isinstance(data, dict) and 'keypoints' in data:
            kpts = _as_array(data['keypoints'], (17, 2), f'{path}: keypoints')
            scores = data.get('scores')
            if scores is not None:
                scores = _as_array(scores, (17, ), f'{path}: scores')
            fmt, rows, coco = 'h36m_json', _h36m_rows(kpts, scores, path), False
        else:
            (fmt, rows), coco = _mmpose_rows(data, path), True
    else:
        raise InputError(f'Unsupported input extension "{ext}" ({path}); use .json or .npz')
    if len(rows.kpts) == 0:
        raise InputError(f'{path}: no instances in the predictions (nothing to lift)')
    _check_rows(rows, path, COCO_KEYPOINT_NAMES if coco else H36M_KEYPOINT_NAMES, clip_scores)
    if check_format:
        _check_format(rows, 'coco17' if coco else 'h36m17', path, score_thr)
    if not coco:
        return fmt, rows.frames(rows.kpts, rows.scores if rows.given_scores else None)
    return fmt, rows.frames(*coco_to_h36m(rows.kpts, rows.scores, score_thr))


def _read_npz(path: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``keypoints`` and optional ``scores`` of an ``.npz``, never unpickling."""
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
    return kpts, scores


def _h36m_rows(kpts: np.ndarray, scores: Optional[np.ndarray], path: str) -> _Rows:
    """Human3.6M-17 arrays: each row is one frame holding one instance."""
    if scores is not None and scores.shape != kpts.shape[:2]:
        raise InputError(f'{path}: scores must have shape {kpts.shape[:2]}, got {scores.shape}')
    return _Rows(range(len(kpts)), np.ones(len(kpts), int), kpts,
                 np.ones(kpts.shape[:2]) if scores is None else scores, scores is not None)


def _mmpose_rows(data: Any, path: str) -> Tuple[str, _Rows]:
    """MMPose predictions (an image's instance list or a video's frame list), COCO-17."""
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
    # A video file is a list of frames {"frame_id", "instances"}; an image file a list of
    # instances {"keypoints", ...}. One frame-like entry makes it a video file, so a frame that
    # lacks "instances" is reported as such.
    is_video = any(isinstance(d, dict) and ('instances' in d or 'frame_id' in d) for d in data)
    raw = data if is_video else [dict(frame_id=0, instances=data)]
    fids, kpts, scores = [], [], []
    for idx, frame in enumerate(raw):
        fid = _frame_id(frame, idx, path)
        k, s = _parse_instances(frame['instances'], f'{path}, frame {fid}')
        fids.append(fid)
        kpts.append(k)
        scores.append(s)
    counts = [len(k) for k in kpts]
    rows = _Rows(fids, counts, np.concatenate(kpts) if kpts else np.zeros((0, 17, 2)),
                 np.concatenate(scores) if scores else np.zeros((0, 17)))
    return ('mmpose_video' if is_video else 'mmpose_image'), rows


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


# --------------------------------------------------------------------------- extras
def load_gt(path: str) -> np.ndarray:
    """Read ground-truth 3D poses without ever unpickling.

    Args:
        path: ``.npy`` (the array), ``.npz`` (array ``keypoints_3d``, or the archive's only
            array) or ``.json`` (the nested list, or an object ``{"keypoints_3d": ...}``).

    Returns:
        ``(M, 17, 3)`` float64 poses, as stored (not yet root-centred).

    Raises:
        InputError: missing file, unsupported extension, object arrays / pickles, missing or
            ambiguous array, wrong shape, non-numbers, NaN/inf.
    """
    if not osp.isfile(path):
        raise InputError(f'--gt file not found: {path}')
    ext = osp.splitext(path)[1].lower()
    what = f'--gt {path}'
    if ext == '.npy':
        try:
            value = load_npy(path)
        except (OSError, ValueError) as e:
            raise InputError(f'{what}: {e}') from e
    elif ext == '.npz':
        try:
            with np.load(path, allow_pickle=False) as npz:
                keys = sorted(npz.files)
                if 'keypoints_3d' in keys:
                    key = 'keypoints_3d'
                elif len(keys) == 1:
                    key = keys[0]
                else:
                    raise InputError(f'{what}: expected an array "keypoints_3d" or a single '
                                     f'array, found {keys}')
                value = npz_array(npz, key, path)
        except InputError:
            raise
        except (OSError, ValueError, KeyError) as e:  # not a zip, object array, ...
            raise InputError(f'{what}: {e}') from e
    elif ext == '.json':
        value = _read_json(path, what)
        if isinstance(value, dict):
            if 'keypoints_3d' not in value:
                raise InputError(f'{what}: a JSON object needs "keypoints_3d" (keys '
                                 f'{sorted(value)})')
            value = value['keypoints_3d']
    else:
        raise InputError(f'Unsupported --gt extension "{ext}" ({path}); use .npy, .npz or '
                         '.json')
    return _as_array(value, (17, 3), f'{what}: ground truth')


def list_images(path: str) -> List[str]:
    """The underlay images named by ``--image``: the file itself, or a folder's images.

    Args:
        path: an image file, or a folder whose files with an image extension
            (:data:`IMAGE_EXTENSIONS`, any case; hidden files skipped) are the frames.

    Returns:
        Image paths, sorted by file name for a folder.

    Raises:
        InputError: ``path`` does not exist, or is a file without an image extension.
    """
    if osp.isdir(path):
        names = sorted(n for n in os.listdir(path) if not n.startswith('.')
                       and osp.splitext(n)[1].lower() in IMAGE_EXTENSIONS
                       and osp.isfile(osp.join(path, n)))
        return [osp.join(path, n) for n in names]
    if not osp.isfile(path):
        raise InputError(f'--image not found: {path}')
    if osp.splitext(path)[1].lower() not in IMAGE_EXTENSIONS:
        raise InputError(f'--image {path}: not an image file (extensions '
                         f'{", ".join(IMAGE_EXTENSIONS)})')
    return [path]


def image_size(path: str) -> Tuple[int, int]:
    """``(width, height)`` from the image header (the pixels are read later, per frame)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f'Cannot read image {path}: {e}') from e


def read_image(path: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB pixels of an image file."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert('RGB'))
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f'Cannot read image {path}: {e}') from e


def n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> Tuple[float, float]:
    """N-MPJPE of one pose: mean joint error after the optimal scaling of the prediction.

    Both poses are root-centred (joint 0, pelvis) first; the scale minimising
    ``sum_j |s P_j - G_j|^2`` is ``s = <P, G> / <P, P>`` (the same as the N-MPJPE metric and
    :func:`mmunsup3d.models.losses.scale_aligned_error`).

    Args:
        pred: ``(17, 3)`` predicted pose.
        gt: ``(17, 3)`` ground-truth pose.

    Returns:
        ``(error, s)``: the mean per-joint error in the GT's units and the scale.
    """
    p = np.asarray(pred, np.float64) - np.asarray(pred, np.float64)[:1]
    g = np.asarray(gt, np.float64) - np.asarray(gt, np.float64)[:1]
    denom = float((p * p).sum())
    s = float((p * g).sum()) / denom if denom > 1e-12 else 0.0
    return float(np.linalg.norm(s * p - g, axis=-1).mean()), s


def frame_title(frame_id: int, errors: Sequence[Optional[float]]) -> str:
    """Figure title; ``errors`` are the frame's per-instance N-MPJPE in metres (``None``: no
    GT or skipped) and are shown only when one is known."""
    title = f'frame {frame_id}'
    if any(e is not None for e in errors):
        vals = ', '.join('n/a' if e is None else f'{1000 * e:.1f}' for e in errors)
        title += (f'  |  N-MPJPE {vals} mm  (prediction rescaled to the GT by the N-MPJPE '
                  'optimal scale; GT dashed)')
    return title


def _is_url(value: str) -> bool:
    return '://' in value


def _is_zoo_name(value: str) -> bool:
    """The rule of :func:`mmunsup3d.apis.init_lifter`: a bare name (no path separator, no
    ``.py`` / ``.pth`` / ``.pt`` ending) that is not an existing path."""
    return (not osp.exists(value) and not _is_url(value) and '/' not in value
            and os.sep not in value and not value.endswith(('.py', '.pth', '.pt')))


def resolve_model_files(config: Optional[str], checkpoint: str) -> Tuple[str, str]:
    """Local config and checkpoint paths for ``--config`` / ``--checkpoint``.

    A zoo name or URL checkpoint is downloaded into the checkpoint cache (a zoo entry's
    committed weights are copied from this checkout, no network) and verified against its
    sha256 by :func:`mmunsup3d.utils.zoo.download_checkpoint`. A zoo-name ``config`` is the
    entry's config; without ``config`` it is the zoo entry's (for a zoo-name checkpoint) or
    :data:`DEFAULT_CONFIG`.

    Raises:
        InputError: unknown zoo name (the message lists the known ones), a failed download or
            verification, or a file that does not exist.
    """
    from mmunsup3d.utils.zoo import DownloadError, download_checkpoint
    try:
        if config is not None and _is_zoo_name(config):
            config = resolve_model(config)['config']
        if _is_url(checkpoint) or _is_zoo_name(checkpoint):
            if config is None and not _is_url(checkpoint):
                config = resolve_model(checkpoint)['config']
            checkpoint = download_checkpoint(checkpoint)
    except KeyError as e:  # unknown zoo name; str() of a KeyError adds quotes
        raise InputError(e.args[0] if e.args else str(e)) from e
    except (DownloadError, ValueError) as e:
        raise InputError(str(e)) from e
    config = DEFAULT_CONFIG if config is None else config
    for path in (config, checkpoint):
        if not osp.isfile(path):
            raise InputError(f'File not found: {path}')
    return config, checkpoint


# --------------------------------------------------------------------------- rendering
LEFT_COLOUR, RIGHT_COLOUR, CENTRE_COLOUR, GT_COLOUR = 'tab:blue', 'tab:red', 'dimgray', 'black'
# Point sizes; at the default 100 dpi 8 pt is 11 px, the smallest text that stays legible.
TITLE_PT, LABEL_PT, TICK_PT = 10, 9, 8


def _side_colour(a: int, b: int) -> str:
    names = (H36M_KEYPOINT_NAMES[a], H36M_KEYPOINT_NAMES[b])
    if any(n.startswith('left') for n in names):
        return LEFT_COLOUR
    if any(n.startswith('right') for n in names):
        return RIGHT_COLOUR
    return CENTRE_COLOUR


def _to_plot(pose: np.ndarray) -> np.ndarray:
    """``(17, 3)`` camera frame (x right, y down, z forward) -> plot axes (x, depth z, up -y),
    so that matplotlib's vertical axis is the person's up."""
    return np.stack([pose[:, 0], pose[:, 2], -pose[:, 1]], -1)


def nice_ticks(half: float) -> np.ndarray:
    """At most 5 ticks at a round step (0.25, 0.5, 1, 2, 5 ... m) covering ``[-half, half]``."""
    step = half / 2
    for candidate in (0.25, 0.5, 1.0, 2.0, 5.0, 10.0):
        if 2 * half / candidate <= 4 + 1e-9:
            step = candidate
            break
    n = math.floor(half / step + 1e-9)
    return np.arange(-n, n + 1) * step


class Renderer:
    """Draws one frame: the 2D input, and the 3D skeletons seen from the camera and 90° off.

    A depth error does not change the camera view (that is what the 2D input constrains); the
    side view, rotated 90° about the vertical axis, shows depth along its horizontal axis.
    Both 3D views are orthographic with equal axis scales, so lengths and angles read true.
    Axis limits are fixed for the whole sequence: the 2D panel spans every input keypoint (and
    every underlay image), the 3D panels ``+-half`` metres around each root, ``half`` being the
    largest root-relative coordinate shown, at least 1 m. Several instances are drawn side by
    side, :attr:`SPACING` apart along each view's horizontal axis (the poses are root-relative,
    so the offset carries no meaning, and the horizontal ticks then give the scale only).

    Args:
        frames_2d: every frame's ``(K, 17, 2)`` keypoints, for the fixed 2D limits.
        poses_3d: every 3D pose that will be drawn, ``(P, 17, 3)`` root-relative (predictions
            as displayed and ground truth), for the fixed 3D limits.
        max_instances: most instances in a frame.
        image_sizes: ``(width, height)`` of the underlay images.
        dpi: pixels per inch of the rendered frames.
        with_gt: whether the legend lists the ground truth.
    """

    SPACING = 1.2
    # (elevation, azimuth) in degrees. Azimuth -90 looks along the camera's optical axis, so
    # the horizontal screen axis is x in one view and depth in the other. Elevation 0 keeps
    # the ticks exact: with any tilt the tick labels, on the box's edges, sit off the
    # skeleton's plane by sin(elevation) x the box depth.
    CAMERA_VIEW = (0.0, -90.0)
    SIDE_VIEW = (0.0, 0.0)
    FIGSIZE = (13.5, 4.8)  # inches: three panels

    def __init__(self, frames_2d: Sequence[np.ndarray], poses_3d: np.ndarray,
                 max_instances: int, image_sizes: Sequence[Tuple[int, int]] = (),
                 dpi: int = 100, with_gt: bool = False) -> None:
        allk = np.concatenate([k.reshape(-1, 2) for k in frames_2d if len(k)])
        lo, hi = allk.min(0), allk.max(0)
        if image_sizes:
            # Pixel centres are integers, so an image spans [-0.5, size - 0.5].
            lo = np.minimum(lo, -0.5)
            hi = np.maximum(hi, np.max(np.asarray(image_sizes, float), 0) - 0.5)
            self.lim2d = (lo, hi)
        else:
            centre, half = (lo + hi) / 2, max((hi - lo).max() / 2 * 1.1, 1.0)
            self.lim2d = (centre - half, centre + half)
        extent = float(np.abs(poses_3d).max()) if len(poses_3d) else 0.0
        # Round up to half a metre, so that the ticks stay round and the limits are stable.
        self.half = max(1.0, math.ceil(extent * 1.05 / 0.5) * 0.5)
        self.max_instances = max(max_instances, 1)
        self.dpi = dpi
        self.with_gt = with_gt

    def _offset(self, i: int) -> float:
        return (i - (self.max_instances - 1) / 2) * self.SPACING

    def figure(self, title: str, kpts2d: np.ndarray, lows: Sequence[Optional[List[int]]],
               poses: Sequence[Optional[np.ndarray]],
               gts: Optional[Sequence[Optional[np.ndarray]]] = None,
               image: Optional[np.ndarray] = None):
        """Build the figure of one frame.

        Args:
            title: figure title.
            kpts2d: ``(K, 17, 2)`` Human3.6M keypoints after the low-confidence fallbacks.
            lows: per instance the replaced joints, ``None`` for a skipped instance.
            poses: per instance the ``(17, 3)`` root-relative 3D pose to draw (``None``:
                skipped).
            gts: per instance the ``(17, 3)`` root-centred ground truth (``None``: none).
            image: ``(H, W, 3)`` uint8 underlay of the 2D panel.

        Returns:
            A :class:`matplotlib.figure.Figure` on an Agg canvas (no pyplot state).
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator
        fig = Figure(figsize=self.FIGSIZE, dpi=self.dpi)
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(1, 3, left=0.05, right=0.99, bottom=0.14, top=0.86,
                                wspace=0.08)

        ax = fig.add_subplot(grid[0])
        if image is not None:
            ax.imshow(image, zorder=0)
        for k, low in zip(kpts2d, lows):
            lowset = set(range(17)) if low is None else set(low)
            style = ':' if low is None else '-'
            for a, b in H36M_SKELETON:
                ax.plot(k[[a, b], 0], k[[a, b], 1], style, color=_side_colour(a, b), lw=2)
            ok = [j for j in range(17) if j not in lowset]
            ax.scatter(k[ok, 0], k[ok, 1], s=12, c='k', zorder=3)
            if lowset:
                bad = sorted(lowset)
                ax.scatter(k[bad, 0], k[bad, 1], s=40, marker='x', c='orange', zorder=4)
        ax.set_xlim(self.lim2d[0][0], self.lim2d[1][0])
        ax.set_ylim(self.lim2d[1][1], self.lim2d[0][1])  # image y points down
        ax.set_aspect('equal')
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize=TICK_PT)
        ax.set_title('input 2D (Human3.6M-17)' + (' on the image' if image is not None else ''),
                     fontsize=LABEL_PT + 1)
        ax.set_xlabel('x [px]', fontsize=LABEL_PT)
        ax.set_ylabel('y [px]', fontsize=LABEL_PT)

        gts = [None] * len(poses) if gts is None else gts
        views = (('camera view (3D, orthographic)', self.CAMERA_VIEW, 0),
                 ('side view (camera view + 90° azimuth)', self.SIDE_VIEW, 1))
        for col, (name, (elev, azim), along) in enumerate(views):
            ax3 = fig.add_subplot(grid[col + 1], projection='3d', proj_type='ortho')
            self._draw_3d(ax3, poses, gts, lows, along)
            ax3.view_init(elev=elev, azim=azim)
            ax3.set_title(name, fontsize=LABEL_PT + 1)
            if along == 1:
                # Depth runs left to right here, away from the camera: mark where it is.
                ax3.text(0.0, -0.95 * self.half, 0.85 * self.half, '← camera',
                         fontsize=LABEL_PT, zorder=5)

        handles = [Line2D([], [], color=LEFT_COLOUR, lw=2, label='left'),
                   Line2D([], [], color=RIGHT_COLOUR, lw=2, label='right')]
        if self.with_gt:
            handles.append(Line2D([], [], color=GT_COLOUR, lw=1.5, ls='--',
                                  label='ground truth'))
        handles.append(Line2D([], [], color='orange', marker='x', ls='',
                              label='low confidence (replaced)'))
        fig.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=LABEL_PT,
                   frameon=False)
        fig.suptitle(title, fontsize=TITLE_PT)
        return fig

    def _draw_3d(self, ax3, poses: Sequence[Optional[np.ndarray]],
                 gts: Sequence[Optional[np.ndarray]], lows: Sequence[Optional[List[int]]],
                 along: int) -> None:
        """Skeletons of one 3D view; instances side by side along plot axis ``along``
        (0: x, for the camera view; 1: depth, for the side view). Joints lifted from replaced
        2D keypoints are marked as in the 2D panel: their depth is a guess from a guess."""
        for i, (pose, gt, low) in enumerate(zip(poses, gts, lows)):
            shift = np.zeros(3)
            shift[along] = self._offset(i)
            if gt is not None:
                g = _to_plot(gt) + shift
                for a, b in H36M_SKELETON:
                    ax3.plot(g[[a, b], 0], g[[a, b], 1], g[[a, b], 2], '--', color=GT_COLOUR,
                             lw=1.5)
            if pose is not None:
                p = _to_plot(pose) + shift
                for a, b in H36M_SKELETON:
                    ax3.plot(p[[a, b], 0], p[[a, b], 1], p[[a, b], 2], color=_side_colour(a, b),
                             lw=2)
                ax3.scatter(p[:, 0], p[:, 1], p[:, 2], s=8, c='k', depthshade=False)
                if low:
                    ax3.scatter(p[low, 0], p[low, 1], p[low, 2], s=40, marker='x', c='orange',
                                depthshade=False)
        half = self.half
        wide = self.SPACING * (self.max_instances - 1) / 2 + half
        ranges = [half, half, half]
        ranges[along] = wide
        ax3.set_xlim(-ranges[0], ranges[0])
        ax3.set_ylim(-ranges[1], ranges[1])
        ax3.set_zlim(-ranges[2], ranges[2])
        ax3.set_box_aspect(ranges, zoom=1.1)  # equal scale on all three axes
        ticks = nice_ticks(half)
        labels = [f'{t:g}' for t in ticks]
        ax3.set_xticks(ticks)
        ax3.set_yticks(ticks)
        ax3.set_zticks(ticks)
        ax3.set_zticklabels(labels)
        ax3.set_zlabel('up (-y) [m]', fontsize=LABEL_PT)
        # The axis seen nearly end-on gets no labels (they would pile up); its grid stays.
        if along == 0:
            ax3.set_xticklabels(labels)
            ax3.set_yticklabels([])
            ax3.set_xlabel('x [m]', fontsize=LABEL_PT)
        else:
            ax3.set_xticklabels([])
            ax3.set_yticklabels(labels)
            ax3.set_ylabel('depth z [m]', fontsize=LABEL_PT)
        ax3.tick_params(labelsize=TICK_PT, pad=0)

    def render(self, *args, **kwargs) -> np.ndarray:
        """:meth:`figure` drawn to pixels: ``(H, W, 3)`` uint8 RGB (the same for every frame).

        ``FigureCanvasAgg.buffer_rgba`` is used because ``tostring_rgb`` is gone from
        matplotlib 3.10+.
        """
        fig = self.figure(*args, **kwargs)
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


class AnimationWriter:
    """Collects rendered frames into ``animation.gif`` (Pillow) or ``animation.mp4``.

    The MP4 goes through OpenCV's FFmpeg backend (``mp4v``) and is streamed frame by frame;
    the GIF keeps every frame (palette-quantised, one byte per pixel) until :meth:`close`.

    Args:
        stage: the :class:`~mmunsup3d.utils.output_dir.OutputDir` in its ``with`` block; the
            file is created relative to its staging folder.
        kind: ``'gif'`` or ``'mp4'``.
        fps: frames per second.

    Raises:
        InputError: (on the first :meth:`add`) OpenCV cannot open an MP4 writer.
    """

    def __init__(self, stage: OutputDir, kind: str, fps: float) -> None:
        self.stage = stage
        self.name = f'animation.{kind}'
        self.kind = kind
        self.fps = fps
        self._frames: List[Any] = []
        self._writer = None
        self._size: Optional[Tuple[int, int]] = None

    def add(self, rgb: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 frame."""
        if self.kind == 'gif':
            from PIL import Image
            self._frames.append(Image.fromarray(rgb).quantize(
                256, method=Image.Quantize.FASTOCTREE))
            return
        import cv2
        if self._writer is None:
            # Even sizes: many MP4 decoders reject odd frame sizes.
            self._size = (rgb.shape[1] // 2 * 2, rgb.shape[0] // 2 * 2)
            self._writer = cv2.VideoWriter(self.stage.fd_path(self.name),
                                           cv2.VideoWriter_fourcc(*'mp4v'),
                                           self.fps, self._size)
            if not self._writer.isOpened():
                raise InputError('--video mp4: OpenCV could not open an MP4 (mp4v) writer; '
                                 'its FFmpeg backend is missing here, use --video gif')
        w, h = self._size
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(rgb[:h, :w]), cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        """Write the GIF / finish the MP4."""
        if self.kind == 'gif' and self._frames:
            first, *rest = self._frames
            with self.stage.open(self.name) as f:
                first.save(f, format='GIF', save_all=True, append_images=rest, loop=0,
                           duration=max(int(round(1000 / self.fps)), 10))
            self._frames = []
        elif self._writer is not None:
            self._writer.release()
            self._writer = None


# --------------------------------------------------------------------------- main
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('input', help='MMPose predictions .json, or Human3.6M-17 .npz/.json')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--config', default=None,
                        help='lifter config path or zoo name (default: the zoo entry of a '
                        f'zoo-name --checkpoint, else {osp.relpath(DEFAULT_CONFIG, REPO)})')
    parser.add_argument('--checkpoint', default=DEFAULT_CHECKPOINT,
                        help='lifter checkpoint: a file, an http(s):// or file:// URL, or a '
                        'model-zoo name (downloaded to the cache and sha256-verified)')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='joints scoring below this are replaced and flagged')
    parser.add_argument('--clip-scores', action='store_true',
                        help='clip keypoint scores outside [0, 1] (e.g. RTMPose reports scores '
                        'above 1) instead of refusing them')
    parser.add_argument('--skip-format-check', action='store_true',
                        help='lift even if the keypoints do not look like the joint order of '
                        'the file (COCO-17 for MMPose predictions, else Human3.6M-17)')
    parser.add_argument('--max-frames', type=int, default=None, help='process the first N')
    parser.add_argument('--render-every', type=int, default=1, metavar='K',
                        help='draw a picture of every K-th frame only (all frames are lifted '
                        'and written to keypoints_3d.json)')
    parser.add_argument('--gt', default=None,
                        help='ground-truth 3D (M, 17, 3) in metres, camera frame, one pose per '
                        'input instance (.npy, .npz or .json); drawn dashed, with N-MPJPE')
    parser.add_argument('--image', default=None,
                        help='underlay of the 2D panel: one image for every frame, or a folder '
                        'with one image per frame (sorted by file name)')
    parser.add_argument('--video', choices=('gif', 'mp4'), default=None,
                        help='for a sequence also write animation.gif or animation.mp4')
    parser.add_argument('--fps', type=float, default=10.0, help='frames per second of --video')
    parser.add_argument('--dpi', type=int, default=100, help='pixels per inch of the frames')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the files of an earlier lift_demo run in --out (only '
                        'folders carrying its marker; other files are kept)')
    return parser.parse_args(argv)


def _check_args(args: argparse.Namespace) -> None:
    """Numeric options and the video encoder, before any file is read."""
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f'--max-frames must be >= 1, got {args.max_frames}')
    if args.render_every < 1:
        raise InputError(f'--render-every must be >= 1, got {args.render_every}')
    if not 0.0 <= args.score_thr <= 1.0:
        raise InputError(f'--score-thr must be in [0, 1], got {args.score_thr}')
    if not (math.isfinite(args.fps) and 0 < args.fps <= 100):
        raise InputError(f'--fps must be in (0, 100], got {args.fps}')
    if not 20 <= args.dpi <= 600:
        raise InputError(f'--dpi must be in [20, 600], got {args.dpi}')
    if args.video == 'mp4':
        try:
            import cv2  # noqa: F401
        except ImportError as e:
            raise InputError('--video mp4 needs OpenCV (opencv-python, with its FFmpeg '
                             'backend), which is not installed; use --video gif') from e


def _match_extras(args: argparse.Namespace, frames: List[Frame]
                  ) -> Tuple[List[Frame], Optional[np.ndarray], Optional[List[str]]]:
    """``--gt`` and ``--image`` matched to the whole input, then cut with it by --max-frames.

    Returns:
        ``(frames, gt rows (M, 17, 3) or None, one image path per frame or None)``.
    """
    n_instances = sum(len(k) for _, k, _ in frames)
    gt_all = None
    if args.gt is not None:
        gt_all = load_gt(args.gt)
        if len(gt_all) != n_instances:
            raise InputError(f'--gt {args.gt} holds {len(gt_all)} pose(s) but the input has '
                             f'{n_instances} instance(s) in {len(frames)} frame(s); it needs one '
                             'ground-truth pose per instance, in the input order')
    images: Optional[List[str]] = None
    if args.image is not None:
        images = list_images(args.image)
        if osp.isdir(args.image) and len(images) != len(frames):
            raise InputError(f'--image {args.image}: the folder holds {len(images)} image(s) but '
                             f'the input has {len(frames)} frame(s); it needs one image per '
                             'frame (sorted by file name), or pass one image file for all '
                             'frames')
        if not osp.isdir(args.image):
            images = images * len(frames)
    if args.max_frames is not None:
        frames = frames[:args.max_frames]
        if sum(len(k) for _, k, _ in frames) == 0:
            raise InputError(f'{args.input}: no instances in the first {args.max_frames} '
                             'frame(s) (nothing to lift)')
        images = None if images is None else images[:len(frames)]
    gt_rows = None if gt_all is None else gt_all[:sum(len(k) for _, k, _ in frames)]
    return frames, gt_rows, images


#: Above this many pictures lift_demo warns (each frame is a matplotlib figure: slow).
RENDER_WARN_FRAMES = 1000


def _render_plan(args: argparse.Namespace, num_frames: int) -> Tuple[List[int], List[str]]:
    """Positions of the frames to draw (every ``--render-every``-th) and all output names."""
    rendered = list(range(0, num_frames, args.render_every))
    animate = args.video is not None and len(rendered) > 1
    if args.video is not None and not animate:
        warnings.warn(f'--video {args.video}: the input has one frame; no animation written'
                      if num_frames == 1 else f'--video {args.video}: only one frame is drawn '
                      f'(--render-every {args.render_every}); no animation written')
    if len(rendered) > RENDER_WARN_FRAMES:
        pixels = Renderer.FIGSIZE[0] * Renderer.FIGSIZE[1] * args.dpi ** 2
        gif = (f'; --video gif holds every frame in memory until the end (about '
               f'{len(rendered) * pixels / 2 ** 30:.1f} GiB)' if args.video == 'gif' else '')
        warnings.warn(f'{len(rendered)} frame pictures will be drawn ({num_frames} input '
                      f'frames, --render-every {args.render_every}); each is a matplotlib '
                      f'figure, so this takes long{gif}. Draw fewer with --max-frames N or '
                      '--render-every K (keypoints_3d.json still holds every frame)')
    names = [f'frame_{n:06d}.png' for n in rendered] + ['keypoints_3d.json']
    if animate:
        names.append(f'animation.{args.video}')
    return rendered, names


class Prepared:
    """The instances of every frame after the low-confidence fallbacks and the skip rules.

    Attributes:
        filled: per frame ``(K, 17, 2)`` keypoints after the fallbacks.
        scores: per frame ``(K, 17)`` scores (ones when the input had none).
        lows: per frame and instance the replaced joints.
        valids: per frame ``(K,)`` bool, False for a skipped instance.
        skipped: how many instances were skipped, by reason.
    """

    def __init__(self) -> None:
        self.filled: List[np.ndarray] = []
        self.scores: List[np.ndarray] = []
        self.lows: List[List[List[int]]] = []
        self.valids: List[np.ndarray] = []
        self.skipped = dict(low_confidence=0, degenerate=0)

    def batch(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(B, 17, 2)`` keypoints and ``(B, 17)`` scores of every instance to lift."""
        rows = [f[v] for f, v in zip(self.filled, self.valids) if len(f)]
        scs = [s[v] for s, v in zip(self.scores, self.valids) if len(s)]
        return (np.concatenate(rows) if rows else np.zeros((0, 17, 2)),
                np.concatenate(scs) if scs else np.zeros((0, 17)))


def _warn_skip(skips: List[str], reason: str, limit: int = 20) -> None:
    for where in skips[:limit]:
        warnings.warn(f'{where}: {reason}; skipped (null in the output)')
    if len(skips) > limit:
        warnings.warn(f'... and {len(skips) - limit} more instance(s) skipped: {reason}')


def prepare_instances(frames: List[Frame], score_thr: float) -> Prepared:
    """Low-confidence fallbacks, then the instances that cannot be lifted are marked skipped.

    Skipped (with a warning naming the frame id and instance): hips and shoulders all below
    ``score_thr``, or a degenerate 2D pose (all joints at one point or on one line, see
    :func:`mmunsup3d.apis.inference.degenerate_poses`).
    """
    from mmunsup3d.apis.inference import degenerate_poses
    prep = Prepared()
    low_skips = []
    for fid, k, s in frames:
        s = np.ones(k.shape[:2]) if s is None else s
        f, low, valid = fill_low_confidence(k, s, score_thr) if len(k) else \
            (k, [], np.zeros(0, bool))
        low_skips += [f'frame {fid}, instance {i}' for i in np.flatnonzero(~valid)]
        prep.filled.append(f)
        prep.scores.append(s)
        prep.lows.append(low)
        prep.valids.append(valid)
    _warn_skip(low_skips, f'hips and shoulders are all below --score-thr {score_thr}')
    # One vectorised test over every instance, split back per frame.
    counts = [len(f) for f in prep.filled]
    flat = degenerate_poses(np.concatenate(prep.filled)) if sum(counts) else np.zeros(0, bool)
    degenerate_skips = []
    for n, bad in enumerate(np.split(flat, np.cumsum(counts)[:-1])):
        bad &= prep.valids[n]
        degenerate_skips += [f'frame {frames[n][0]}, instance {i}' for i in np.flatnonzero(bad)]
        prep.valids[n] = prep.valids[n] & ~bad
    _warn_skip(degenerate_skips, 'degenerate 2D pose (all joints at one point or on one '
               'line: its scale cannot be normalised)')
    prep.skipped = dict(low_confidence=len(low_skips), degenerate=len(degenerate_skips))
    return prep


def _lift(config: str, checkpoint: str, device: str, prep: Prepared) -> np.ndarray:
    """``(B, 17, 3)`` lifts of every instance not skipped, in frame and instance order."""
    from mmunsup3d.apis import init_lifter, lift_keypoints
    batch, batch_sc = prep.batch()
    model = init_lifter(config, checkpoint, device=device)
    if not len(batch):
        return np.zeros((0, 17, 3), np.float32)
    # Scores were checked (or clipped on request) when the input was read.
    return lift_keypoints(model, batch.astype(np.float32), batch_sc.astype(np.float32))


class Views:
    """Per frame and instance what the 3D panels draw, and the frames' N-MPJPE values."""

    def __init__(self) -> None:
        self.shown: List[List[Optional[np.ndarray]]] = []
        self.shown_gt: List[List[Optional[np.ndarray]]] = []
        self.errors: List[List[Optional[float]]] = []


def _instance_result(pred: np.ndarray, kpts: np.ndarray, low: List[int],
                     gt: Optional[np.ndarray]) -> Tuple[Dict[str, Any], np.ndarray,
                                                        Optional[float]]:
    """One lifted instance: its JSON entry, the pose the 3D panels draw and its N-MPJPE."""
    res = dict(keypoints_3d=np.round(pred, 6).tolist(), keypoints_2d=np.round(kpts, 3).tolist(),
               keypoint_names=list(H36M_KEYPOINT_NAMES), low_confidence=low)
    if gt is None:
        return res, pred, None
    err, scale = n_mpjpe(pred, gt)
    res.update(n_mpjpe=round(err, 6), gt_scale=round(scale, 6))
    return res, scale * (pred - pred[:1]), err  # displayed at the GT's scale


def _frames_document(frames: List[Frame], prep: Prepared, lifted: np.ndarray,
                     gt_rows: Optional[np.ndarray]) -> Tuple[List[Dict[str, Any]], Views]:
    """The ``frames`` of keypoints_3d.json, in the input's frame and instance order."""
    views, out = Views(), []
    cursor, gt_cursor = 0, 0
    for n, (fid, _, _) in enumerate(frames):
        results, poses, gts, errs = [], [], [], []
        for i in range(len(prep.filled[n])):
            gt = None
            if gt_rows is not None:
                gt = gt_rows[gt_cursor] - gt_rows[gt_cursor][:1]  # root-centred, like the lift
                gt_cursor += 1
            gts.append(gt)
            if not prep.valids[n][i]:
                results.append(None)
                poses.append(None)
                errs.append(None)
                continue
            res, pose, err = _instance_result(lifted[cursor].astype(np.float64),
                                              prep.filled[n][i], prep.lows[n][i], gt)
            results.append(res)
            poses.append(pose)
            errs.append(err)
            cursor += 1
        out.append(dict(frame_id=fid, instances=results))
        views.shown.append(poses)
        views.shown_gt.append(gts)
        views.errors.append(errs)
    return out, views


def _document(args: argparse.Namespace, fmt: str, config: str, checkpoint: str,
              frames: List[Frame], prep: Prepared, lifted: np.ndarray,
              gt_rows: Optional[np.ndarray]) -> Tuple[Dict[str, Any], Views]:
    """keypoints_3d.json and what the pictures draw."""
    from mmunsup3d.apis import chirality_rate
    doc: Dict[str, Any] = dict(
        input=osp.abspath(args.input), input_format=fmt, config=config,
        checkpoint=args.checkpoint, checkpoint_file=checkpoint, score_thr=args.score_thr,
        keypoint_names=list(H36M_KEYPOINT_NAMES),
        coordinates='root-relative camera frame, metres: x right, y down, z forward',
        # Label-free depth-mirror check: a lifter stuck in the mirrored solution scores near 1.
        # null when every instance was skipped (the rate of no poses is undefined).
        chirality_rate=chirality_rate(lifted) if len(lifted) else None,
        skipped=dict(prep.skipped), render_every=args.render_every)
    if args.gt is not None:
        doc['ground_truth'] = osp.abspath(args.gt)
    if args.image is not None:
        doc['image'] = osp.abspath(args.image)
    doc['frames'], views = _frames_document(frames, prep, lifted, gt_rows)
    if args.gt is not None:
        known = [e for errs in views.errors for e in errs if e is not None]
        doc['n_mpjpe_mean'] = float(np.mean(known)) if known else None
    return doc, views


def _render_all(stage: OutputDir, args: argparse.Namespace, frames: List[Frame],
                prep: Prepared, views: Views, images: Optional[List[str]],
                image_sizes: List[Tuple[int, int]], rendered: List[int]) -> Optional[str]:
    """Draw the pictures (and the animation) into the staging folder; the animation's name."""
    from PIL import Image
    from tqdm import tqdm
    # Limits from every frame, drawn or not: they stay those of the whole sequence.
    drawn = [p for poses in views.shown + views.shown_gt for p in poses if p is not None]
    renderer = Renderer(prep.filled, np.asarray(drawn).reshape(-1, 17, 3),
                        max(len(f) for f in prep.filled), image_sizes, args.dpi,
                        with_gt=args.gt is not None)
    writer = AnimationWriter(stage, args.video, args.fps) \
        if args.video is not None and len(rendered) > 1 else None
    cache: Dict[str, np.ndarray] = {}  # one --image file is read once
    for n in tqdm(rendered, desc='rendering', unit='frame'):
        image = None
        if images is not None:
            if images[n] not in cache:
                cache.clear()
                cache[images[n]] = read_image(images[n])
            image = cache[images[n]]
        frame_lows = [prep.lows[n][i] if prep.valids[n][i] else None
                      for i in range(len(prep.filled[n]))]
        rgb = renderer.render(frame_title(frames[n][0], views.errors[n]), prep.filled[n],
                              frame_lows, views.shown[n], views.shown_gt[n], image)
        with stage.open(f'frame_{n:06d}.png') as f:
            Image.fromarray(rgb).save(f, format='PNG', dpi=(args.dpi, args.dpi))
        if writer is not None:
            writer.add(rgb)
    if writer is None:
        return None
    writer.close()
    return writer.name


def _output_dir(args: argparse.Namespace) -> OutputDir:
    extras = [p for p in (args.gt, args.image) if p is not None]
    try:
        return OutputDir(args.out, tool='lift_demo', overwrite=args.overwrite,
                         inputs=[args.input] + extras)
    except OutputDirError as e:
        raise InputError(f'--out: {e}') from e


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Lift and render; returns the JSON document written to ``keypoints_3d.json``.

    Every check that can fail (arguments, input, extras, output names taken by files lift_demo
    did not write) runs before the lifter is loaded; nothing reaches ``--out`` before all the
    outputs were written.

    Raises:
        InputError: bad input or arguments, or an unusable ``--out``.
    """
    target = _output_dir(args)
    _check_args(args)
    fmt, frames = load_input(args.input, args.score_thr, clip_scores=args.clip_scores,
                             check_format=not args.skip_format_check)
    frames, gt_rows, images = _match_extras(args, frames)
    rendered, names = _render_plan(args, len(frames))
    try:
        target.reserve(names)
    except OutputDirError as e:
        raise InputError(f'--out: {e}') from e
    # Header reads only: a broken image fails here, before the lifter is loaded.
    image_sizes = [image_size(p) for p in dict.fromkeys(images[n] for n in rendered)] \
        if images is not None else []
    config, checkpoint = resolve_model_files(args.config, args.checkpoint)
    prep = prepare_instances(frames, args.score_thr)
    lifted = _lift(config, checkpoint, args.device, prep)
    doc, views = _document(args, fmt, config, checkpoint, frames, prep, lifted, gt_rows)
    try:
        with target as stage:  # files appear in --out only once all are written
            animation = _render_all(stage, args, frames, prep, views, images, image_sizes,
                                    rendered)
            if animation is not None:
                doc['animation'] = animation
            with stage.open('keypoints_3d.json', 'w') as f:
                json.dump(doc, f)
    except OutputDirError as e:
        raise InputError(f'--out: {e}') from e
    return doc


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so the staging folder is removed."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def _summary(doc: Dict[str, Any], out: str) -> None:
    n_inst = sum(len(f['instances']) for f in doc['frames'])
    skipped = doc['skipped']
    n_skip = sum(skipped.values())
    why = f': {skipped["low_confidence"]} low-confidence, {skipped["degenerate"]} degenerate' \
        if n_skip else ''
    print(f'Lifted {n_inst - n_skip} instance(s) in {len(doc["frames"])} frame(s) '
          f'({n_skip} skipped{why}) -> {osp.abspath(out)}')
    if doc['chirality_rate'] is not None:
        from mmunsup3d.evaluation import format_chirality_rate
        print(f'{format_chirality_rate(doc)} of {n_inst - n_skip} lifted poses')
    if doc.get('n_mpjpe_mean') is not None:
        n_gt = sum(1 for f in doc['frames'] for r in f['instances'] if r and 'n_mpjpe' in r)
        print(f'N-MPJPE vs --gt: {1000 * doc["n_mpjpe_mean"]:.1f} mm (mean of {n_gt} poses, '
              'each prediction optimally scaled)')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status (2 for input errors, 143 after SIGTERM)."""
    args = parse_args(argv)
    # Signal handlers can only be set from the main thread (main() may run in a worker).
    own_handler = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _on_sigterm) if own_handler else None
    try:
        doc = run(args)
    except InputError as e:
        print(f'lift_demo: error: {e}', file=sys.stderr)
        return 2
    except Terminated:
        print('lift_demo: terminated (SIGTERM); nothing was written to --out', file=sys.stderr)
        return 143
    finally:
        if own_handler:
            signal.signal(signal.SIGTERM, old)
    _summary(doc, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
