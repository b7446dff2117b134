"""The user's own 2D keypoints as a training set: MMPose predictions, COCO keypoints or an npz.

:class:`Keypoints2DDataset` reads one file of 2D person keypoints (no image is opened) and
serves it as Human3.6M-17 pixel keypoints, the same rows every training dataset of this package
serves: the discriminators' real poses and the lifter's inputs. Three file formats, told apart
from the content (or declared with ``file_format``):

- ``'mmpose_preds'``: what ``MMPoseInferencer(..., pred_out_dir=...)`` writes (and
  ``demo/lift_demo.py`` reads): a video file ``[{"frame_id", "instances": [...]}]`` or an image
  file ``[instance, ...]`` (also wrapped as ``{"instance_info": ...}`` / ``{"predictions":
  ...}``); every instance has ``keypoints`` (17 x 2), optional ``keypoint_scores`` (17) and
  optional ``track_id``;
- ``'coco'``: a COCO keypoint annotation file ``{"images", "annotations": [{"image_id",
  "keypoints": [x, y, v] * 17, ...}]}`` or COCO keypoint results ``[{"image_id", "keypoints",
  "score"}]`` (the third value of each joint is then its confidence);
- ``'npz'``: ``keypoints`` ``(N, 17, 2)`` pixels, optional ``keypoint_scores`` ``(N, 17)``,
  optional ``sequence_ids`` ``(N,)`` and optional ``keypoints_3d`` ``(N, 17, 3)`` metres.

Every person record (instance, annotation, row) is one row, in file order. Rows go through the
steps of the inference path (``demo/lift_demo.py``): the declared joint order is checked
against the anatomy (:func:`check_keypoint_format`), COCO-17 is converted to Human3.6M-17
(:func:`coco_to_h36m`), joints scoring below ``score_thr`` are replaced by the fallbacks of
:func:`fill_low_confidence` (scores are kept as given), and a row is dropped when fewer than
``min_keypoints`` of its Human3.6M-17 joints are confident, its hips and shoulders are all low,
or its 2D pose is degenerate (:func:`degenerate_poses`); the counts are logged.

Temporal pairs (``next_index``, for ``with_next``): predictions pair an instance with the
instance of the same ``track_id`` in the frame whose ``frame_id`` is one more (a frame holding
one instance without ``track_id`` is the one person of a single track); COCO files pair when
their images carry PoseTrack's ``vid_id`` and ``frame_id`` (same video, same ``track_id`` or the
single annotation of each image, ``frame_id`` one more); npz rows ``i`` and ``i + 1`` pair when
their ``sequence_ids`` are equal.
"""
import json
import logging
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from mmpose.registry import DATASETS
from ..structures.keypoint_convert import (KEYPOINT_FORMATS, check_keypoint_format,
                                           coco_to_h36m, fill_low_confidence)
from ..utils.safe_pickle import npz_array, open_npz
from .mocap_dataset import resolve_data_file
from .pose_array_dataset import PoseArrayDataset

__all__ = ['Keypoints2DDataset', 'FILE_FORMATS', 'NPZ_KEYS', 'GT_KEYS', 'read_keypoints_file',
           'next_index_from_tracks']

#: File formats :class:`Keypoints2DDataset` reads.
FILE_FORMATS = ('mmpose_preds', 'coco', 'npz')
#: Arrays an npz of 2D keypoints may hold (``scores`` is ``demo/lift_demo.py``'s name of
#: ``keypoint_scores``).
NPZ_KEYS = ('keypoints', 'keypoint_scores', 'scores', 'sequence_ids', 'keypoints_3d')
#: Arrays a ground-truth file (``gt_file``) may hold.
GT_KEYS = ('keypoints_3d', 'sequence_ids', 'img_paths')
_NUM_JOINTS = 17
# Action of the test-mode image paths when the ground truth names none: MMPose's MPJPE reads
# ``<subject>_<action>.<camera>_<frame>.jpg`` and reports one extra figure per action.
_DEFAULT_ACTION = 'all'
_ZIP_MAGIC = b'PK\x03\x04'


@dataclass
class Records2D:
    """Every person record of a file as one row, in the file's joint layout and order.

    Attributes:
        kpts: ``(N, 17, 2)`` float64 pixels.
        scores: ``(N, 17)`` float64 confidences (ones where the file has none).
        time: ``(N,)`` int64 frame number of each row (only compared within a track).
        track: ``(N,)`` int64 track code; rows of one code pair when their ``time`` differs by
            one; ``-1``: the row pairs with nothing.
        temporal: whether the file can give temporal pairs at all.
        record: ``row -> 'frame 3 (entry 3), instance 0'``: how a message names a row.
        sequence_ids: ``(N,)`` int64 ids a ground-truth file's ``sequence_ids`` must equal (npz
            ``sequence_ids``; integer ``track_id`` of predictions), or ``None``.
        keypoints_3d: ``(N, 17, 3)`` float64 3D from the file itself (npz), or ``None``.
        skipped: records left out while reading, by reason (COCO crowd regions).
    """
    kpts: np.ndarray
    scores: np.ndarray
    time: np.ndarray
    track: np.ndarray
    temporal: bool
    record: Callable[[int], str]
    sequence_ids: Optional[np.ndarray] = None
    keypoints_3d: Optional[np.ndarray] = None
    skipped: Dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- array checks
def _first_bad_row(arr: np.ndarray) -> Optional[int]:
    """First row of ``arr`` holding NaN or inf, or ``None``."""
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(1)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def _one_record(value: Any, tail: Tuple[int, ...], where: str, what: str) -> np.ndarray:
    """``value`` of one record as a float64 array of shape ``tail`` (ValueError naming it)."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, RecursionError) as e:  # ragged or absurdly nested lists
        raise ValueError(f'{where}: {what} is not a numeric array ({e})') from e
    if arr.dtype.kind not in 'iuf':
        raise ValueError(f'{where}: {what} must hold numbers, got {value!r:.80}')
    if arr.shape != tail:
        raise ValueError(f'{where}: {what} must have shape {tail}, got {arr.shape}')
    return arr.astype(np.float64)


def _stack(values: List[Any], tail: Tuple[int, ...], record: Callable[[int], str],
           what: str) -> np.ndarray:
    """Stack per-record JSON lists into ``(N, *tail)`` float64; errors name the record.

    One ``np.asarray`` over all records in the common case; the records are looked at one by
    one only to name the first bad one.
    """
    try:
        arr = np.asarray(values)
        fast = arr.dtype.kind in 'iuf' and arr.shape == (len(values), ) + tail
    except (TypeError, ValueError, RecursionError):
        fast = False
    if not fast:
        for i, value in enumerate(values):
            _one_record(value, tail, record(i), what)
        raise ValueError(f'{record(0)}: cannot read the {what} of the records as one array')
    arr = arr.astype(np.float64)
    bad = _first_bad_row(arr)
    if bad is not None:
        raise ValueError(f'{record(bad)}: {what} contain NaN or inf')
    return arr


def _npz_numeric(arr: np.ndarray, tail: Tuple[int, ...], path: str, key: str,
                 kinds: str = 'iuf') -> np.ndarray:
    """An npz array of shape ``(N, *tail)`` and a numeric dtype; NaN/inf name the row."""
    if arr.dtype.kind not in kinds:
        raise ValueError(f'{path}: "{key}" must hold numbers ({kinds}), got dtype {arr.dtype}')
    if arr.ndim != len(tail) + 1 or arr.shape[1:] != tail:
        expected = ', '.join(['N'] + [str(t) for t in tail])
        raise ValueError(f'{path}: "{key}" must have shape ({expected}), got {arr.shape}')
    bad = _first_bad_row(arr.astype(np.float64)) if len(arr) else None
    if bad is not None:
        raise ValueError(f'{path}, row {bad}: "{key}" contains NaN or inf')
    return arr


def next_index_from_tracks(time: np.ndarray, track: np.ndarray,
                           record: Callable[[int], str]) -> np.ndarray:
    """Row of the next frame of the same track: same code, ``time`` one more.

    Args:
        time: ``(N,)`` int frame numbers.
        track: ``(N,)`` int track codes; ``-1`` rows pair with nothing.
        record: names a row in messages.

    Returns:
        ``(N,)`` int64 next rows, ``-1`` where there is none.

    Raises:
        ValueError: two rows of one track in the same frame (the message names both).
    """
    order = np.lexsort((time, track))
    t, k = time[order], track[order]
    same = (k[:-1] == k[1:]) & (k[:-1] >= 0)
    dup = same & (t[1:] == t[:-1])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise ValueError(f'{record(int(order[i + 1]))}: same track as {record(int(order[i]))} '
                         'in the same frame; a track holds one person per frame')
    link = same & (t[1:] - t[:-1] == 1)
    nxt = np.full(len(time), -1, dtype=np.int64)
    nxt[order[:-1][link]] = order[1:][link]
    return nxt


def _track_codes(keys: Sequence[Optional[tuple]]) -> np.ndarray:
    """Hashable track keys (``None``: no track) as int codes (``-1`` for ``None``)."""
    codes: Dict[tuple, int] = {}
    return np.array([-1 if k is None else codes.setdefault(k, len(codes)) for k in keys],
                    dtype=np.int64)


# --------------------------------------------------------------------------- file reading
def _read_json(path: str) -> Any:
    try:
        with open(path, 'r', encoding='utf-8') as f:
            return json.load(f)
    except RecursionError as e:
        raise ValueError(f'{path}: cannot read it as JSON (nested too deeply)') from e
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f'{path}: cannot read it as JSON ({e})') from e


def _json_format(data: Any, path: str) -> str:
    """``'coco'`` or ``'mmpose_preds'`` from a loaded JSON document (see the module doc)."""
    if isinstance(data, dict):
        if 'annotations' in data:
            return 'coco'
        if 'instance_info' in data or 'predictions' in data:
            return 'mmpose_preds'
        raise ValueError(f'{path}: unrecognised JSON object (keys {sorted(data)[:10]}); expected '
                         'MMPose predictions (a list, or {"instance_info": ...}), a COCO '
                         'keypoint file ({"images", "annotations"}) or COCO keypoint results')
    if not isinstance(data, list):
        raise ValueError(f'{path}: expected a JSON list or object, got {type(data).__name__}')
    if not data:
        raise ValueError(f'{path}: the file holds an empty list: no person to train on')
    has_image_id = [isinstance(d, dict) and 'image_id' in d for d in data]
    if any(has_image_id):
        return 'coco'
    return 'mmpose_preds'


def read_keypoints_file(path: str, file_format: str = 'auto') -> Tuple[str, Records2D]:
    """Read a 2D keypoint file of one of :data:`FILE_FORMATS` into rows.

    Args:
        path: the file.
        file_format: ``'auto'`` (from the content: a zip archive is an npz, a JSON object with
            ``annotations`` or a list of records with ``image_id`` is COCO, any other JSON is
            MMPose predictions) or one of :data:`FILE_FORMATS`.

    Returns:
        ``(format, records)``.

    Raises:
        ValueError: an empty or unreadable file, a declared format the content contradicts, or
            any problem of the content (the message names the file and the record).
    """
    if file_format != 'auto' and file_format not in FILE_FORMATS:
        raise ValueError(f'Keypoints2DDataset: unknown file_format {file_format!r}; expected '
                         f"'auto' or one of {list(FILE_FORMATS)}")
    if osp.getsize(path) == 0:
        raise ValueError(f'{path} is empty (0 bytes): no person to train on')
    with open(path, 'rb') as f:
        is_zip = f.read(4) == _ZIP_MAGIC
    found = 'npz' if is_zip else None
    data = None
    if not is_zip and file_format != 'npz':
        data = _read_json(path)
        found = _json_format(data, path)
    if file_format not in ('auto', found):
        raise ValueError(f"{path}: declared file_format='{file_format}', but the content is "
                         f"{found or 'not an npz archive'} (see Keypoints2DDataset's formats); "
                         "fix file_format or leave it 'auto'")
    if found == 'npz':
        return found, read_npz(path)
    return found, (read_coco(data, path) if found == 'coco' else read_mmpose_preds(data, path))


# --------------------------------------------------------------------------- MMPose predictions
def _preds_frames(data: Any, path: str) -> Tuple[bool, List[Tuple[int, Any]]]:
    """``(is_video, [(frame_id, instances)])`` of a predictions document, one per entry."""
    if isinstance(data, dict):
        data = data['instance_info'] if 'instance_info' in data else data['predictions']
    if not isinstance(data, list):
        raise ValueError(f'{path}: MMPose predictions must be a list of frames or instances, '
                         f'got {type(data).__name__}')
    # A video file lists frames {"frame_id", "instances"}; an image file lists instances.
    is_frame = [isinstance(d, dict) and ('instances' in d or 'frame_id' in d) for d in data]
    if not any(is_frame):
        return False, [(0, data)]
    frames, seen = [], {}
    for idx, (frame, ok) in enumerate(zip(data, is_frame)):
        if not ok or 'instances' not in frame:
            got = sorted(frame) if isinstance(frame, dict) else type(frame).__name__
            raise ValueError(f'{path}, entry {idx}: expected a frame {{"frame_id", '
                             f'"instances"}} like the other entries, got {got} (the file mixes '
                             'video frames with other records)')
        fid = frame.get('frame_id', idx)
        if isinstance(fid, bool) or not isinstance(fid, int):
            raise ValueError(f'{path}, entry {idx}: "frame_id" must be an integer, got {fid!r}')
        if fid in seen:
            raise ValueError(f'{path}, entry {idx}: frame_id {fid} repeats entry {seen[fid]}')
        seen[fid] = idx
        frames.append((fid, frame['instances']))
    return True, frames


def _track_id(inst: dict, where: str) -> Any:
    tid = inst.get('track_id')
    if tid is not None and (isinstance(tid, bool) or not isinstance(tid, (int, str))):
        raise ValueError(f'{where}: "track_id" must be an integer or a string, got {tid!r}')
    return tid


def read_mmpose_preds(data: Any, path: str) -> Records2D:
    """Rows of an MMPose predictions document (COCO-17 in MMPose's convention)."""
    is_video, frames = _preds_frames(data, path)
    kpts, scores, keys, tids, pos = [], [], [], [], []
    for entry, (fid, instances) in enumerate(frames):
        where = f'{path}, frame {fid} (entry {entry})' if is_video else path
        if not isinstance(instances, list):
            raise ValueError(f'{where}: "instances" must be a list, got '
                             f'{type(instances).__name__}')
        for i, inst in enumerate(instances):
            if not isinstance(inst, dict) or 'keypoints' not in inst:
                raise ValueError(f'{where}, instance {i}: expected an instance with '
                                 '"keypoints" (the file mixes formats?)')
            tid = _track_id(inst, f'{where}, instance {i}')
            # One person alone in a frame, without a track id, is the one track of the file.
            keys.append(('id', tid) if tid is not None else
                        (('single', ) if len(instances) == 1 and is_video else None))
            tids.append(tid)
            kpts.append(inst['keypoints'])
            s = inst.get('keypoint_scores')
            scores.append([1.0] * _NUM_JOINTS if s is None else s)
            pos.append((fid, entry, i))

    def record(r: int) -> str:
        fid, entry, i = pos[r]
        return f'{path}, frame {fid} (entry {entry}), instance {i}' if is_video else \
            f'{path}, instance {i}'

    if not kpts:
        raise ValueError(f'{path}: no instance in any of its {len(frames)} frame(s): no person '
                         'to train on')
    ints = all(isinstance(t, int) for t in tids)
    return Records2D(
        kpts=_stack(kpts, (_NUM_JOINTS, 2), record, 'keypoints'),
        scores=_stack(scores, (_NUM_JOINTS, ), record, 'keypoint_scores'),
        time=np.array([p[0] for p in pos], dtype=np.int64), track=_track_codes(keys),
        temporal=is_video, record=record,
        sequence_ids=np.array(tids, dtype=np.int64) if ints else None)


# --------------------------------------------------------------------------- COCO
def _coco_annotations(data: Any, path: str) -> Tuple[bool, List[dict], Dict[Any, tuple]]:
    """``(is_results, annotations, {image_id: (vid_id, frame_id)})`` of a COCO document."""
    if isinstance(data, dict):
        anns, images = data['annotations'], data.get('images', [])
        if not isinstance(anns, list) or not isinstance(images, list):
            raise ValueError(f'{path}: "annotations" and "images" must be lists')
        is_results = False
    else:
        anns, images, is_results = data, [], True
    what = 'result' if is_results else 'annotation'
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict) or 'keypoints' not in ann or \
                (is_results and 'image_id' not in ann):
            got = sorted(ann) if isinstance(ann, dict) else type(ann).__name__
            need = '"image_id" and "keypoints"' if is_results else '"keypoints"'
            raise ValueError(f'{path}, {what} {i}: expected a COCO keypoint {what} with {need}, '
                             f'got {got} (the file mixes formats?)')
    video = _coco_videos(images, path)
    if not anns:
        raise ValueError(f'{path}: no {what} in the file: no person to train on')
    return is_results, anns, video


def _coco_videos(images: List[Any], path: str) -> Dict[Any, tuple]:
    """``{image_id: (vid_id, frame_id)}`` of PoseTrack-style images (that know their video)."""
    video = {}
    for i, img in enumerate(images):
        if not isinstance(img, dict) or not {'id', 'vid_id', 'frame_id'} <= set(img):
            continue
        vid, fid = img['vid_id'], img['frame_id']
        if isinstance(fid, bool) or not isinstance(fid, int) or \
                isinstance(vid, bool) or not isinstance(vid, (int, str)):
            raise ValueError(f'{path}, image {i} (id {img["id"]}): "frame_id" must be an integer '
                             f'and "vid_id" an integer or a string, got {fid!r}, {vid!r}')
        video[img['id']] = (vid, fid)
    return video


def _coco_tracks(anns: List[dict], index: List[int], video: Dict[Any, tuple],
                 path: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(time, track code)`` of each annotation (``index``: its position in the file)."""
    per_image: Dict[Any, int] = {}
    for ann in anns:
        per_image[ann.get('image_id')] = per_image.get(ann.get('image_id'), 0) + 1
    keys, time = [], []
    for i, ann in zip(index, anns):
        vid_frame = video.get(ann.get('image_id'))
        if vid_frame is None:
            keys.append(None)
        elif ann.get('track_id') is not None:
            keys.append((vid_frame[0], 'id', _track_id(ann, f'{path}, annotation {i}')))
        else:
            keys.append((vid_frame[0], 'single') if per_image[ann['image_id']] == 1 else None)
        time.append(vid_frame[1] if vid_frame is not None else 0)
    return np.asarray(time, dtype=np.int64), _track_codes(keys)


def read_coco(data: Any, path: str) -> Records2D:
    """Rows of a COCO keypoint annotation file or of COCO keypoint results (COCO-17)."""
    is_results, anns, video = _coco_annotations(data, path)
    crowd = [bool(a.get('iscrowd', 0)) for a in anns]
    index = [i for i, c in enumerate(crowd) if not c]
    if not index:
        raise ValueError(f'{path}: all {len(anns)} annotations are crowd regions (iscrowd=1): '
                         'no person to train on')
    anns = [anns[i] for i in index]
    what = 'result' if is_results else 'annotation'

    def record(r: int) -> str:
        return f'{path}, {what} {index[r]} (id {anns[r].get("id", "-")})'

    raw = _stack([a['keypoints'] for a in anns], (3 * _NUM_JOINTS, ), record,
                 'keypoints ([x, y, v] x 17)').reshape(-1, _NUM_JOINTS, 3)
    if is_results:  # COCO results: the third number of a joint is its confidence
        scores = raw[..., 2].copy()
    else:
        given = [r for r, a in enumerate(anns) if a.get('keypoint_scores') is not None]
        scores = np.minimum(raw[..., 2], 1.0)
        if given:
            scores[given] = _stack([anns[r]['keypoint_scores'] for r in given],
                                   (_NUM_JOINTS, ), lambda j: record(given[j]),
                                   'keypoint_scores')
        scores = np.where(raw[..., 2] > 0, scores, 0.0)  # v = 0: not labelled
    time, track = _coco_tracks(anns, index, video, path)
    return Records2D(kpts=raw[..., :2], scores=scores, time=time, track=track,
                     temporal=bool(video), record=record,
                     skipped=dict(crowd=len(crowd) - len(index)))


# --------------------------------------------------------------------------- npz
def _npz_arrays(path: str, allowed: Sequence[str], required: str) -> Dict[str, np.ndarray]:
    """Every array of an npz (never unpickled); unknown keys and a missing key are errors."""
    with open_npz(path) as npz:
        unknown = sorted(set(npz.files) - set(allowed))
        if unknown:
            raise ValueError(f'{path}: unknown array(s) {unknown}; an npz here may hold only '
                             f'{list(allowed)} (rename or remove the others)')
        if required not in npz.files:
            raise ValueError(f'{path} has no "{required}" array (has {sorted(npz.files)})')
        return {k: npz_array(npz, k, path) for k in npz.files}


def read_npz(path: str) -> Records2D:
    """Rows of an npz of 2D keypoints (:data:`NPZ_KEYS`), in the declared joint layout."""
    arrays = _npz_arrays(path, NPZ_KEYS, 'keypoints')
    if 'scores' in arrays and 'keypoint_scores' in arrays:
        raise ValueError(f'{path}: holds both "scores" and "keypoint_scores"; keep one')
    kpts = _npz_numeric(arrays['keypoints'], (_NUM_JOINTS, 2), path, 'keypoints')
    n = len(kpts)
    if n == 0:
        raise ValueError(f'{path}: "keypoints" holds no pose (N = 0): no person to train on')
    key = 'keypoint_scores' if 'keypoint_scores' in arrays else 'scores'
    scores = np.ones((n, _NUM_JOINTS)) if key not in arrays else \
        _npz_numeric(arrays[key], (_NUM_JOINTS, ), path, key)
    k3d = arrays.get('keypoints_3d')
    if k3d is not None:
        k3d = _npz_numeric(k3d, (_NUM_JOINTS, 3), path, 'keypoints_3d').astype(np.float64)
    seq = arrays.get('sequence_ids')
    if seq is not None:
        seq = _npz_numeric(seq, (), path, 'sequence_ids', kinds='iu').astype(np.int64)
    for name, arr in ((key, scores), ('keypoints_3d', k3d), ('sequence_ids', seq)):
        if arr is not None and len(arr) != n:
            raise ValueError(f'{path}: "{name}" has {len(arr)} rows, "keypoints" {n}')
    track = np.full(n, -1, np.int64) if seq is None else np.unique(seq, return_inverse=True)[1]
    return Records2D(
        kpts=kpts.astype(np.float64), scores=scores.astype(np.float64),
        time=np.arange(n, dtype=np.int64), track=track.astype(np.int64).ravel(),
        temporal=seq is not None, record=lambda r: f'{path}, row {r}', sequence_ids=seq,
        keypoints_3d=k3d)


def read_ground_truth(path: str, records: Records2D, source: str) -> Dict[str, np.ndarray]:
    """A ground-truth npz (:data:`GT_KEYS`) aligned row by row with ``records``.

    Returns:
        ``{'keypoints_3d': (N, 17, 3) float64[, 'img_paths': (N,) str]}``.

    Raises:
        ValueError: unknown keys, wrong shapes, NaN/inf, another row count than ``source``'s
            records, or ``sequence_ids`` other than those of ``source``.
    """
    arrays = _npz_arrays(path, GT_KEYS, 'keypoints_3d')
    n = len(records.kpts)
    k3d = _npz_numeric(arrays['keypoints_3d'], (_NUM_JOINTS, 3), path, 'keypoints_3d')
    out = dict(keypoints_3d=k3d.astype(np.float64))
    if 'img_paths' in arrays:
        if arrays['img_paths'].dtype.kind != 'U' or arrays['img_paths'].ndim != 1:
            raise ValueError(f'{path}: "img_paths" must be a 1-D array of strings')
        out['img_paths'] = arrays['img_paths']
    for name, arr in out.items():
        if len(arr) != n:
            raise ValueError(f'{path}: "{name}" has {len(arr)} rows but {source} holds {n} '
                             'person records; the ground truth must hold one row per record, '
                             'in file order')
    seq, own = arrays.get('sequence_ids'), records.sequence_ids
    if seq is not None:
        seq = _npz_numeric(seq, (), path, 'sequence_ids', kinds='iu').astype(np.int64)
        if len(seq) != n:
            raise ValueError(f'{path}: "sequence_ids" has {len(seq)} rows, "keypoints_3d" {n}')
        differ = np.flatnonzero(seq != own) if own is not None else []
        if len(differ):
            r = int(differ[0])
            raise ValueError(f'{path}, row {r}: sequence id {seq[r]} is not that of '
                             f'{records.record(r)} ({own[r]}): the rows are misaligned, or the '
                             'ground truth is for other 2D')
    return out


# --------------------------------------------------------------------------- the dataset
@DATASETS.register_module()
class Keypoints2DDataset(PoseArrayDataset):
    """Your 2D keypoints (MMPose predictions, COCO keypoints, npz) as a Human3.6M-17 dataset.

    The formats, the conversion and the temporal-pair rules are in the module docstring. Rows:

    - ``keypoints_2d``: ``(N, 17, 2)`` float32 Human3.6M-17 pixels, low-confidence joints
      replaced by :func:`fill_low_confidence`'s fallbacks;
    - ``keypoint_scores``: ``(N, 17)`` float32 Human3.6M-17 scores (as given, or as
      :func:`coco_to_h36m` derives them; ones when the file has none);
    - ``next_index``: ``(N,)`` int64 (files with temporal information only);
    - ``record_index``: ``(N,)`` int64 position of the row's record among the file's records
      (instances / non-crowd annotations / npz rows, in file order), to trace a row back;
    - with ``test_mode`` (or ``with_3d``): ``keypoints_3d`` ``(N, 17, 3)`` root-relative (the
      pelvis is subtracted) and ``img_paths``.

    Args:
        ann_file: the 2D file.
        data_root: optional folder ``ann_file`` (and ``gt_file``) are relative to.
        file_format: ``'auto'`` or one of :data:`FILE_FORMATS` (see
            :func:`read_keypoints_file`).
        keypoint_format: the file's joint order, ``'coco17'`` or ``'h36m17'``; default
            ``'coco17'`` for MMPose predictions and COCO files (their convention); an npz must
            declare it.
        score_thr: joints scoring below it are not trusted (fallbacks, ``min_keypoints``, the
            layout check and the head-top rule of :func:`coco_to_h36m`), as ``--score-thr`` of
            ``demo/lift_demo.py``.
        min_keypoints: drop rows with fewer confident Human3.6M-17 joints. The default 13 lets
            at most 4 of the 17 joints a real pose shows the discriminator be fallbacks (e.g.
            both wrists and ankles).
        clip_scores: clip scores outside ``[0, 1]`` (RTMPose and other SimCC heads report some
            above 1) instead of refusing them.
        check_format: refuse a file whose anatomy contradicts ``keypoint_format``
            (:func:`check_keypoint_format`); switch off for people upside down in most frames.
        gt_file: optional npz of 3D ground truth for evaluation (:data:`GT_KEYS`:
            ``keypoints_3d`` ``(M, 17, 3)`` metres in the camera frame, one row per record of
            ``ann_file`` in file order; optional ``sequence_ids``, checked against the file's;
            optional ``img_paths``), as ``tools/dataset_converters/mocap_to_2d.py --gt-out``
            writes it. An npz ``ann_file`` may hold ``keypoints_3d`` itself instead.
        **kwargs: ``test_mode``, ``with_3d``, ``with_next``, ``metainfo`` of
            :class:`PoseArrayDataset`. ``test_mode`` and ``with_3d`` need 3D ground truth;
            ``with_next`` needs temporal pairs.

    Attributes:
        file_format: the format read.
        dropped: rows dropped by reason: ``few_keypoints`` (below ``min_keypoints``, or hips and
            shoulders all low), ``degenerate``, ``crowd`` (COCO crowd regions).

    Raises:
        FileNotFoundError: ``ann_file`` or ``gt_file`` does not exist.
        ValueError: bad options; a bad file (empty, no person, NaN/inf, wrong shapes, mixed
            formats, unknown keys, scores outside ``[0, 1]``, coordinates beyond
            ``MAX_ABS_COORD``), a joint order the anatomy contradicts, no row left, test mode
            without 3D or ``with_next`` without temporal pairs; file-content errors name the
            file and the record.
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 file_format: str = 'auto',
                 keypoint_format: Optional[str] = None,
                 score_thr: float = 0.3,
                 min_keypoints: int = 13,
                 clip_scores: bool = False,
                 check_format: bool = True,
                 gt_file: Optional[str] = None,
                 **kwargs) -> None:
        if keypoint_format is not None and keypoint_format not in KEYPOINT_FORMATS:
            raise ValueError(f'Keypoints2DDataset: unknown keypoint_format {keypoint_format!r}; '
                             f'expected one of {sorted(KEYPOINT_FORMATS)}')
        if not 0.0 <= score_thr <= 1.0:
            raise ValueError(f'Keypoints2DDataset: score_thr must be in [0, 1], got {score_thr}')
        if isinstance(min_keypoints, bool) or not isinstance(min_keypoints, int) or \
                not 0 <= min_keypoints <= _NUM_JOINTS:
            raise ValueError(f'Keypoints2DDataset: min_keypoints must be an int in [0, '
                             f'{_NUM_JOINTS}], got {min_keypoints!r}')
        self.ann_file = resolve_data_file(ann_file, data_root)
        self.gt_file = None if gt_file is None else resolve_data_file(gt_file, data_root)
        self.file_format = file_format
        self.keypoint_format = keypoint_format
        self.score_thr = float(score_thr)
        self.min_keypoints = min_keypoints
        self.clip_scores = clip_scores
        self.check_format = check_format
        self.dropped: Dict[str, int] = {}
        super().__init__(**kwargs)

    # ----------------------------------------------------------------- steps
    def _declared_format(self) -> str:
        if self.keypoint_format is not None:
            return self.keypoint_format
        if self.file_format == 'npz':
            raise ValueError(f"Keypoints2DDataset: {self.ann_file} is an npz: declare its joint "
                             "order with keypoint_format='coco17' or 'h36m17'")
        return 'coco17'  # MMPose predictions and COCO files are COCO-17 by convention

    def _check_values(self, rec: Records2D) -> None:
        """Pixel coordinates within ``MAX_ABS_COORD``; scores in ``[0, 1]`` (or clipped)."""
        from ..apis.inference import MAX_ABS_COORD
        too_far = np.flatnonzero((np.abs(rec.kpts) > MAX_ABS_COORD).any((1, 2)))
        if len(too_far):
            r = int(too_far[0])
            raise ValueError(f'{rec.record(r)}: keypoints exceed |{MAX_ABS_COORD:g}| px (max '
                             f'{np.abs(rec.kpts[r]).max():g}); expected pixel coordinates')
        outside = (rec.scores < 0.0) | (rec.scores > 1.0)
        if self.clip_scores:
            np.clip(rec.scores, 0.0, 1.0, out=rec.scores)
        elif outside.any():
            r, j = (int(v) for v in np.argwhere(outside)[0])
            raise ValueError(f'{rec.record(r)}: scores must lie in [0, 1]; joint {j} has '
                             f'{rec.scores[r, j]:g} ({int(outside.sum())} out of range in all). '
                             'Set clip_scores=True to clip them (RTMPose and other SimCC heads '
                             'report scores above 1)')

    def _to_h36m(self, rec: Records2D) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Human3.6M-17 ``(keypoints filled, scores, valid)`` of every row."""
        kpts, scores = rec.kpts, rec.scores
        if self.keypoint_format == 'coco17':
            kpts, scores = coco_to_h36m(kpts, scores, self.score_thr)
        filled, valid = kpts.copy(), np.ones(len(kpts), bool)
        # fill_low_confidence walks pose by pose: only the rows that need it.
        need = np.flatnonzero((scores < self.score_thr).any(1))
        if len(need):
            filled[need], _, valid[need] = fill_low_confidence(kpts[need], scores[need],
                                                               self.score_thr)
        return filled, scores, valid

    def _keep(self, kpts: np.ndarray, scores: np.ndarray, valid: np.ndarray,
              rec: Records2D) -> np.ndarray:
        """Rows to keep; the counts of the dropped ones go to ``dropped`` and the log."""
        from ..apis.inference import degenerate_poses
        few = ((scores >= self.score_thr).sum(1) < self.min_keypoints) | ~valid
        degenerate = ~few & degenerate_poses(kpts)
        keep = ~(few | degenerate)
        self.dropped = dict(few_keypoints=int(few.sum()), degenerate=int(degenerate.sum()),
                            **rec.skipped)
        print_log(f'Keypoints2DDataset: {int(keep.sum())} of {len(keep)} poses kept from '
                  f'{self.ann_file} ({self.file_format}, {self.keypoint_format}); dropped: '
                  f'{int(few.sum())} with fewer than min_keypoints={self.min_keypoints} joints '
                  f'scoring >= {self.score_thr:g} (or hips and shoulders all low), '
                  f'{int(degenerate.sum())} degenerate (all joints on a point or a line)'
                  + (f', {rec.skipped["crowd"]} crowd regions' if rec.skipped else ''),
                  logger='current', level=logging.WARNING if sum(self.dropped.values())
                  else logging.INFO)
        if not keep.any():
            raise ValueError(f'{self.ann_file}: no usable pose: all {len(keep)} were dropped '
                             f'({self.dropped}); lower min_keypoints or score_thr, or check the '
                             'scores')
        return keep

    def _next_index(self, rec: Records2D, keep: np.ndarray) -> Optional[np.ndarray]:
        """Temporal pairs among the kept rows (``None`` when the file has no time)."""
        if not rec.temporal:
            if self.with_next:
                raise ValueError(f'Keypoints2DDataset: with_next=True needs temporal pairs, but '
                                 f'{self.ann_file} ({self.file_format}) has no time information '
                                 '(predictions: a video file; COCO: images with vid_id and '
                                 'frame_id; npz: sequence_ids)')
            return None
        nxt = next_index_from_tracks(rec.time, rec.track, rec.record)
        new_row = np.cumsum(keep) - 1
        linked = (nxt >= 0) & keep[np.maximum(nxt, 0)]
        nxt = np.where(linked, new_row[np.maximum(nxt, 0)], -1)[keep]
        if self.with_next and not (nxt >= 0).any():
            raise ValueError(f'Keypoints2DDataset: with_next=True, but no two kept rows of '
                             f'{self.ann_file} are consecutive frames of one track (see the '
                             "temporal-pair rule of the file's format)")
        return nxt.astype(np.int64)

    def _ground_truth(self, rec: Records2D) -> Optional[Dict[str, np.ndarray]]:
        """3D of every record (``gt_file`` or the npz's own), root-relative; ``None``: none."""
        if self.gt_file is not None and rec.keypoints_3d is not None:
            raise ValueError(f'Keypoints2DDataset: {self.ann_file} holds keypoints_3d and '
                             f'gt_file={self.gt_file} is given too; use one')
        if self.gt_file is not None:
            gt = read_ground_truth(self.gt_file, rec, self.ann_file)
        elif rec.keypoints_3d is not None:
            gt = dict(keypoints_3d=rec.keypoints_3d)
        else:
            if self.test_mode or self.with_3d:
                raise ValueError(
                    f'Keypoints2DDataset: {self.ann_file} has no 3D ground truth, so it cannot '
                    f'serve test_mode=True or with_3d=True (no MPJPE without 3D): pass gt_file= '
                    'an npz with keypoints_3d (one row per record, in file order), or add '
                    'keypoints_3d to the npz; or evaluate on another dataset')
            return None
        gt['keypoints_3d'] = gt['keypoints_3d'] - gt['keypoints_3d'][:, :1]  # pelvis-relative
        return gt

    def load_arrays(self) -> Dict[str, np.ndarray]:
        self.file_format, rec = read_keypoints_file(self.ann_file, self.file_format)
        self.keypoint_format = self._declared_format()
        self._check_values(rec)
        if self.check_format:
            check_keypoint_format(rec.kpts, rec.scores, self.keypoint_format,
                                  source=self.ann_file, score_thr=self.score_thr)
        gt = self._ground_truth(rec)
        kpts, scores, valid = self._to_h36m(rec)
        keep = self._keep(kpts, scores, valid, rec)
        arrays = dict(keypoints_2d=kpts[keep].astype(np.float32),
                      keypoint_scores=scores[keep].astype(np.float32),
                      record_index=np.flatnonzero(keep).astype(np.int64))
        nxt = self._next_index(rec, keep)
        if nxt is not None:
            arrays['next_index'] = nxt
        if gt is not None and (self.test_mode or self.with_3d):
            arrays['keypoints_3d'] = gt['keypoints_3d'][keep].astype(np.float32)
        if self.test_mode:
            paths = gt.get('img_paths')
            arrays['img_paths'] = paths[keep] if paths is not None else np.array(
                [f'own_{_DEFAULT_ACTION}.cam0_{int(r):06d}.jpg' for r in np.flatnonzero(keep)])
        return arrays
