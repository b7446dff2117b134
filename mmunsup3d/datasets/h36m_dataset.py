"""Human3.6M in MMPose's format, served as in-memory arrays for (unsupervised) lifting.

Files are MMPose's (``tools/dataset_converters/preprocess_h36m.py`` in the MMPose repository):
``annotation_body3d/fps50/h36m_{train,test}.npz`` with ``imgname (N,)``, ``center (N, 2)``,
``scale (N,)``, ``part (N, 17, 3)`` (pixels + visibility) and ``S (N, 17, 4)`` (camera-frame
metres + visibility); ``annotation_body3d/cameras.pkl`` keyed by ``(subject, camera_id)``; and
optional 2D detections ``(N, 17, 3)`` (pixels + score) aligned with the annotation rows.

MMPose's :class:`~mmpose.datasets.Human36mDataset` itself opens and checks these files, but with
``lazy_init=True``: its per-sample ``data_list`` (one Python dict per pose, 1.56 M of them for
the training set) is never built. Its sequence indexing (videos grouped by subject/action/camera
in sorted order, sliding windows of ``seq_len`` frames ``seq_step`` apart, optional padding,
``subset_frac``), the target frame of each window and its "valid instance" filter are re-done
here with vectorised NumPy, so the samples, their order and their values are MMPose's (a test
checks this against a fully built ``Human36mDataset``).

No file is ever unpickled unrestricted: MMPose reads ``cameras.pkl`` with ``mmengine.load``
(plain ``pickle.load``, which runs whatever the file names, e.g. ``os.system``), so here it is
read by :func:`~mmunsup3d.utils.safe_pickle.safe_load` (NumPy arrays and plain data only)
instead; the annotation ``.npz`` and the detection ``.npy`` are opened with
``allow_pickle=False``, and an object array in them is an error naming the file and key.
"""
import os.path as osp
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.fileio import exists, get_local_path
from mmengine.logging import print_log
from mmengine.utils import is_abs

import mmpose
from mmpose.datasets.datasets.body3d import Human36mDataset
from mmpose.registry import DATASETS
from ..utils.safe_pickle import load_npy, npz_array, open_npz
from .pose_array_dataset import PoseArrayDataset, subsample_labelled
from .safe_h36m import SafeHuman36mDataset

__all__ = [
    'H36MLiftingDataset', 'H36M_TRAIN_SUBJECTS', 'H36M_TEST_SUBJECTS', 'H36M_CAMERA_IDS',
    'parse_h36m_videos'
]

H36M_TRAIN_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8')
H36M_TEST_SUBJECTS = ('S9', 'S11')
H36M_CAMERA_IDS = ('54138969', '55011271', '58860488', '60457274')
# Absolute path, so MMPose does not warn that its relative METAINFO path is missing.
_H36M_META = osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs', '_base_', 'datasets',
                      'h36m.py')


def parse_h36m_videos(imgnames: np.ndarray) -> Tuple[np.ndarray, List[Tuple[str, str, str]]]:
    """Group Human3.6M frames into videos the way MMPose does.

    MMPose keys a frame by ``(subject, action, camera)`` parsed from the basename
    ``<subject>_<action>.<camera>_<frame>.jpg`` and orders videos by that tuple. The key depends
    only on the basename up to its last ``_``, so each distinct stem is parsed once (with
    MMPose's own parser) instead of every one of the 1.56 M names.

    Args:
        imgnames: ``(F,)`` image names as stored in the annotation file.

    Returns:
        ``frame_video`` ``(F,)`` int64 video id of each frame (ids follow the sorted keys) and
        the sorted list of video keys.
    """
    names = imgnames.tolist()
    stems: Dict[str, int] = {}
    add = stems.setdefault
    stem_id = np.fromiter((add(n.rpartition('/')[2].rpartition('_')[0], len(stems))
                           for n in names), dtype=np.int64, count=len(names))
    _, first = np.unique(stem_id, return_index=True)  # first frame of each stem
    keys = []
    for i in first.tolist():
        try:
            keys.append(Human36mDataset._parse_h36m_imgname(names[i]))
        except ValueError as e:
            raise ValueError(f'Image name "{names[i]}" is not in Human3.6M\'s '
                             '"<subject>_<action>.<camera>_<frame>.jpg" form') from e
    video_keys = sorted(set(keys))
    rank = {k: i for i, k in enumerate(video_keys)}
    stem_video = np.array([rank[k] for k in keys], dtype=np.int64)
    return stem_video[stem_id], video_keys


def _sorted_subjects(subjects) -> List[str]:
    """Subject names in numeric order (S1, S5, ..., S9, S11), others after them."""
    def key(name: str):
        digits = name[1:]
        return (0, int(digits), name) if digits.isdigit() else (1, 0, name)
    return sorted(subjects, key=key)


class VideoWindows:
    """MMPose's Human3.6M windows as arrays: frames sorted by video, windows as anchors.

    Frames are ordered as MMPose iterates them (videos in sorted ``(subject, action, camera)``
    order, frames in file order inside a video); a window is identified by its anchor, a
    position in that order (its first frame, or with ``pad_video_seq`` its target frame).

    Args:
        frame_video: ``(F,)`` video id of each annotation row (ids in sorted-key order).
        seq_len: frames per window.
        seq_step: frame interval inside a window.
        causal: the target is the last frame (else the middle one).
        pad_video_seq: MMPose's padding (a window at every frame, edges repeated).
    """

    def __init__(self, frame_video: np.ndarray, seq_len: int, seq_step: int, causal: bool,
                 pad_video_seq: bool) -> None:
        if pad_video_seq and not causal and seq_len % 2 == 0:
            raise ValueError('pad_video_seq with causal=False needs an odd seq_len '
                             '(MMPose builds windows of seq_len - 1 frames otherwise)')
        self.seq_len, self.seq_step = seq_len, seq_step
        self.causal, self.pad_video_seq = causal, pad_video_seq
        # Stable sort: frames keep their file order inside a video, as in MMPose.
        self.order = np.argsort(frame_video, kind='stable')
        video_len = np.bincount(frame_video)
        video_start = np.concatenate([[0], np.cumsum(video_len)[:-1]])
        self.video = frame_video[self.order]
        self.pos = np.arange(len(self.order)) - video_start[self.video]
        self.length = video_len[self.video]

    def anchors(self) -> np.ndarray:
        """Every window MMPose builds, in its order."""
        if self.pad_video_seq:
            return np.arange(len(self.order))
        span = (self.seq_len - 1) * self.seq_step + 1
        return np.flatnonzero(self.pos <= self.length - span)

    def positions(self, anchors: np.ndarray, j: Optional[int] = None) -> np.ndarray:
        """Sorted positions of window frames: all ``(A, seq_len)``, or frame ``j`` ``(A,)``."""
        offs = np.arange(self.seq_len) if j is None else j
        if j is None:
            anchors = anchors[:, None]
        if not self.pad_video_seq:
            return anchors + offs * self.seq_step
        left = self.seq_len - 1 if self.causal else (self.seq_len - 1) // 2
        pos = self.pos[anchors]
        # Frames before/after the video are its first/last frame, as MMPose pads.
        return anchors - pos + np.clip(pos + (offs - left) * self.seq_step, 0,
                                       self.length[anchors] - 1)

    def frames(self, anchors: np.ndarray, j: Optional[int] = None) -> np.ndarray:
        """Annotation rows of window frames (see :meth:`positions`)."""
        return self.order[self.positions(anchors, j)]

    def target(self, anchors: np.ndarray) -> np.ndarray:
        """Annotation row of each window's target frame (last if causal, else middle)."""
        return self.frames(anchors, self.seq_len - 1 if self.causal else self.seq_len // 2)

    def next_rows(self, anchors: np.ndarray, step: int) -> np.ndarray:
        """For one window per dataset row, the row of the window ``step`` frames later in the
        same video, or -1 (end of the video, or that window is not in the dataset)."""
        row_of = np.full(len(self.order), -1, dtype=np.int64)
        row_of[anchors] = np.arange(len(anchors))
        inside = self.pos[anchors] + step < self.length[anchors]
        return np.where(inside, row_of[np.minimum(anchors + step, len(row_of) - 1)], -1)


class _LazyHuman36m(SafeHuman36mDataset):
    """MMPose's ``Human36mDataset`` with vectorised sequence indexing (only ever built lazily)
    and safe file loading.

    ``get_sequence_indices`` (called by MMPose's ``__init__``) returns the windows as anchors of
    a :class:`VideoWindows` instead of a list of index lists. Files are read without unrestricted
    unpickling: the annotation archive with ``allow_pickle=False`` (``_load_ann_file``), the
    detections likewise (``_load_keypoint_2d_detection``), and the camera file with
    :func:`~mmunsup3d.utils.safe_pickle.safe_load` (:class:`SafeHuman36mDataset`: MMPose 1.3.2
    reads it inline in ``BaseMocapDataset.__init__`` with ``mmengine.load``, so it is read
    before and MMPose is given no camera file; ``camera_param_file`` and ``camera_param`` are
    set afterwards exactly as MMPose sets them).
    """

    _owner = 'H36MLiftingDataset'

    def __init__(self,
                 subset_seed: Optional[int] = 0,
                 check_ann: Optional[Callable[[Any], None]] = None,
                 **kwargs) -> None:
        self.subset_seed = subset_seed
        self.check_ann = check_ann
        super().__init__(**kwargs)

    def _load_ann_file(self, ann_file: str) -> None:
        """Open the annotation archive as MMPose does, but never unpickling (object arrays
        are refused when a key is read, see :func:`~mmunsup3d.utils.safe_pickle.npz_array`)."""
        self.ann_path = ann_file
        with get_local_path(ann_file) as local_path:
            try:
                # A pickle is never loaded; a single array, a truncated or corrupt archive are
                # errors naming the file.
                self.ann_data = open_npz(local_path, name=ann_file)
            except ValueError as e:
                raise ValueError(f'H36MLiftingDataset: annotation file {e}; expected MMPose\'s '
                                 'Human3.6M annotation archive') from None

    def _load_keypoint_2d_detection(self, det_file: str) -> np.ndarray:
        """MMPose's detection loading (``(N, J, 3)`` float32) with ``allow_pickle=False``."""
        with get_local_path(det_file) as local_path:
            det = load_npy(local_path, name=det_file)
        if det.dtype.kind not in 'biuf':
            raise ValueError(f'H36MLiftingDataset: detections in {det_file} must be numeric, '
                             f'got dtype {det.dtype}')
        return det.astype(np.float32)

    def get_sequence_indices(self) -> np.ndarray:  # type: ignore[override]
        if self.check_ann is not None:  # first use of the opened file: clear errors early
            self.check_ann(self.ann_data)
        if self.multiple_target:
            raise ValueError('H36MLiftingDataset does not support multiple_target')
        imgnames = npz_array(self.ann_data, 'imgname', self.ann_path)
        if imgnames.dtype.kind != 'U':
            raise ValueError(f'H36MLiftingDataset: "imgname" in {self.ann_path} must be a string '
                             f'array, got dtype {imgnames.dtype}')
        frame_video, self.video_keys = parse_h36m_videos(imgnames)
        self.windows = VideoWindows(frame_video, self.seq_len, self.seq_step, self.causal,
                                    self.pad_video_seq)
        anchors = self.windows.anchors()
        # MMPose keeps a random contiguous slice (drawn from the global RNG even when
        # subset_frac == 1); a fixed seed makes it reproducible.
        size = int(len(anchors) * self.subset_frac)
        rng = np.random if self.subset_seed is None else np.random.RandomState(self.subset_seed)
        start = rng.randint(0, len(anchors) - size + 1)
        return anchors[start:start + size]


@DATASETS.register_module()
class H36MLiftingDataset(PoseArrayDataset):
    """Human3.6M (MMPose's files) as arrays: 2D for training, 2D + 3D for testing.

    Each sample is the target frame of one of MMPose's windows (``seq_len`` frames ``seq_step``
    apart; the last frame if ``causal`` else the middle one): with the default ``seq_len=1`` every
    frame of the annotation file, in MMPose's order (videos sorted by subject, action, camera).
    Larger ``seq_len`` only selects the same samples MMPose's temporal models use; the lifter
    still sees single frames.

    Arrays (see :class:`PoseArrayDataset`):

    - ``keypoints_2d`` ``(N, 17, 2)`` pixels, from ``part`` (``keypoint_2d_src='gt'``) or the
      detection file (``'detection'``, which also gives ``keypoint_scores``);
    - ``keypoints_3d`` root-relative camera-frame metres from ``S``: test mode, or training with
      ``with_3d`` (then ``has_3d`` marks the ``labelled_fraction`` of rows that may use it);
    - ``img_paths`` (test mode): MMPose's ``imgname`` of the target frame, from which MMPose's
      ``MPJPE`` metric takes the action (``.../S9_Directions_1.54138969_000001.jpg`` ->
      ``Directions``);
    - ``next_index``: the row ``next_step`` frames later in the same video, ``-1`` if none.

    The split is MMPose's: one annotation file per split (``h36m_train.npz``: S1, S5, S6, S7,
    S8; ``h36m_test.npz``: S9, S11). ``subjects`` optionally keeps only some subjects.

    Args:
        ann_file: annotation ``.npz``, relative to ``data_root`` unless absolute.
        data_root: dataset root (``data/h36m/``).
        camera_param_file: optional ``cameras.pkl``; when given, every video's
            ``(subject, camera)`` must have parameters (kept in ``camera_param``).
        keypoint_2d_src: ``'gt'`` or ``'detection'``.
        keypoint_2d_det_file: ``(N, 17, 3)`` ``.npy`` of detections aligned with ``ann_file``.
        seq_len: MMPose's window length.
        seq_step: frame interval inside a window.
        causal: the target is the window's last frame (else the middle one).
        pad_video_seq: MMPose's padding (a window at every frame, edges repeated).
        subset_frac: keep a random contiguous ``subset_frac`` of the windows (MMPose semantics).
        subset_seed: seed of that draw; ``None`` uses the global NumPy RNG as MMPose does.
        subjects: keep only these subjects (after MMPose's selection); ``None`` keeps all.
        indices: MMPose's ``indices``: an int keeps the first (or, negative, last) rows, a
            sequence keeps the listed rows.
        next_step: frame gap of ``next_index``.
        labelled_fraction: fraction of training rows that carry 3D when ``with_3d``.
        labelled_seed: seed choosing the labelled rows.
        labelled_subjects: draw the labelled rows only from these subjects (e.g. ``['S1']`` with
            ``labelled_fraction=0.1`` = 10 % of S1's rows carry 3D, the rest of S1 and every
            other subject are unlabelled); ``None`` draws from all rows.
        **kwargs: ``test_mode``, ``with_3d``, ``with_next``, ``metainfo`` of the base class.
    """

    def __init__(self,
                 ann_file: str = 'annotation_body3d/fps50/h36m_train.npz',
                 data_root: str = '',
                 camera_param_file: Optional[str] = None,
                 keypoint_2d_src: str = 'gt',
                 keypoint_2d_det_file: Optional[str] = None,
                 seq_len: int = 1,
                 seq_step: int = 1,
                 causal: bool = True,
                 pad_video_seq: bool = False,
                 subset_frac: float = 1.0,
                 subset_seed: Optional[int] = 0,
                 subjects: Optional[Sequence[str]] = None,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 next_step: int = 1,
                 labelled_fraction: float = 1.0,
                 labelled_seed: int = 0,
                 labelled_subjects: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        if keypoint_2d_src not in ('gt', 'detection'):
            raise ValueError(f'keypoint_2d_src must be "gt" or "detection", got '
                             f'"{keypoint_2d_src}" ("pipeline" needs images)')
        if seq_len < 1 or seq_step < 1 or next_step < 1:
            raise ValueError(f'seq_len, seq_step and next_step must be >= 1, got '
                             f'{seq_len}, {seq_step}, {next_step}')
        if not 0.0 < subset_frac <= 1.0:
            raise ValueError(f'subset_frac must be in (0, 1], got {subset_frac}')
        data_root = data_root or ''
        self.ann_file = self._resolve(ann_file, data_root, 'Annotation file')
        self.camera_param_file = None if camera_param_file is None else \
            self._resolve(camera_param_file, data_root, 'Camera parameter file')
        self.keypoint_2d_det_file = None
        if keypoint_2d_src == 'detection':
            if not keypoint_2d_det_file:
                raise ValueError('keypoint_2d_src="detection" needs keypoint_2d_det_file')
            self.keypoint_2d_det_file = self._resolve(keypoint_2d_det_file, data_root,
                                                      '2D detection file')
        self.data_root = data_root
        self.keypoint_2d_src = keypoint_2d_src
        self.seq_len = seq_len
        self.seq_step = seq_step
        self.causal = causal
        self.pad_video_seq = pad_video_seq
        self.subset_frac = subset_frac
        self.subset_seed = subset_seed
        self.subjects = None if subjects is None else [str(s) for s in subjects]
        self.indices = indices
        self.next_step = next_step
        self.labelled_fraction = labelled_fraction
        self.labelled_seed = labelled_seed
        self.labelled_subjects = None if labelled_subjects is None else \
            [str(s) for s in labelled_subjects]
        self._mm_metainfo = kwargs.pop('metainfo', None) or dict(from_file=_H36M_META)
        super().__init__(**kwargs)

    # ----------------------------------------------------------------- files
    @staticmethod
    def _resolve(path: str, data_root: str, what: str) -> str:
        full = path if is_abs(path) else osp.join(data_root, path)
        if not is_abs(full):
            # MMPose's BaseDataset joins relative paths with data_root once more.
            full = osp.abspath(full)
        if not exists(full):
            raise FileNotFoundError(f'H36MLiftingDataset: {what} "{full}" does not exist '
                                    '(see docs/h36m.md to prepare Human3.6M)')
        return full

    def _check_keys(self, ann) -> None:
        need = ['imgname']
        if self.keypoint_2d_src == 'gt':
            need.append('part')
        if self.test_mode or self.with_3d:
            need.append('S')
        missing = [k for k in need if k not in ann.files]
        if missing:
            raise KeyError(f'H36MLiftingDataset: {self.ann_file} lacks key(s) {missing} '
                           f'(has {sorted(ann.files)}); expected MMPose\'s Human3.6M '
                           'annotation (imgname, center, scale, part, S)')

    def _array(self, ann, key: str, num_frames: int, width: int) -> np.ndarray:
        arr = npz_array(ann, key, self.ann_file)
        if arr.dtype.kind not in 'biuf':
            raise ValueError(f'H36MLiftingDataset: "{key}" in {self.ann_file} must be numeric, '
                             f'got dtype {arr.dtype}')
        num_joints = self.metainfo['num_keypoints']
        if arr.ndim != 3 or arr.shape[0] != num_frames or arr.shape[1] != num_joints or \
                arr.shape[2] < width:
            raise ValueError(f'H36MLiftingDataset: "{key}" in {self.ann_file} must be '
                             f'({num_frames}, {num_joints}, {width}), got {arr.shape}')
        return arr

    # ----------------------------------------------------------------- extraction
    def load_arrays(self) -> Dict[str, np.ndarray]:
        tic = time.perf_counter()
        # MMPose's own dataset opens and checks the files; lazy_init skips its per-sample dicts.
        mm = _LazyHuman36m(
            subset_seed=self.subset_seed,
            check_ann=self._check_keys,
            ann_file=self.ann_file,
            seq_len=self.seq_len,
            seq_step=self.seq_step,
            causal=self.causal,
            pad_video_seq=self.pad_video_seq,
            subset_frac=self.subset_frac,
            keypoint_2d_src=self.keypoint_2d_src,
            keypoint_2d_det_file=self.keypoint_2d_det_file,
            camera_param_file=self.camera_param_file,
            metainfo=self._mm_metainfo,
            data_root=self.data_root,
            test_mode=self.test_mode,
            lazy_init=True)
        self._metainfo = mm.metainfo
        ann = mm.ann_data
        self.video_keys: List[Tuple[str, str, str]] = mm.video_keys
        win: VideoWindows = mm.windows
        num_frames = len(win.order)
        anchors = mm.sequence_indices

        # 2D of every frame, as MMPose casts it (float32), and the per-window validity filter
        # (MMPose drops windows whose 2D is all <= 0).
        if self.keypoint_2d_src == 'detection':
            det = mm._load_keypoint_2d_detection(mm.keypoint_2d_det_file)
            if det.ndim != 3 or det.shape[0] != num_frames or det.shape[2] != 3 or \
                    det.shape[1] != self.metainfo['num_keypoints']:
                raise ValueError(f'H36MLiftingDataset: detections in '
                                 f'{self.keypoint_2d_det_file} must be ({num_frames}, '
                                 f'{self.metainfo["num_keypoints"]}, 3) to match '
                                 f'{self.ann_file}, got {det.shape}')
            kpts_all, scores_all = det[..., :2], det[..., 2]
        else:
            kpts_all = self._array(ann, 'part', num_frames, 3)[..., :2]
            scores_all = None
        frame_max = kpts_all.max(axis=(1, 2)).astype(np.float32)
        window_max = frame_max[win.frames(anchors, 0)]
        for j in range(1, self.seq_len):  # a loop over window frames, not over 1.5 M windows
            np.maximum(window_max, frame_max[win.frames(anchors, j)], out=window_max)
        num_windows = len(anchors)
        anchors = anchors[~(window_max <= 0)]  # NaN stays, as in MMPose (and fails below)
        if not len(anchors):
            raise self._no_samples(
                'before any selection',
                f'{num_windows} window(s) of seq_len={self.seq_len}, seq_step={self.seq_step} '
                f'(subset_frac={self.subset_frac}), {num_windows} of them dropped because all '
                'their 2D keypoints are <= 0' if num_windows else
                f'no window of seq_len={self.seq_len}, seq_step={self.seq_step} fits in any '
                'video')

        # Extra selections: subjects, then MMPose's `indices`.
        anchor_video = win.video[anchors]
        if self.subjects is not None:
            present = {k[0] for k in self.video_keys}
            absent = sorted(set(self.subjects) - present)
            if absent:
                print_log(f'H36MLiftingDataset: subject(s) {absent} not in {self.ann_file}',
                          logger='current', level=30)
            keep_video = np.array([k[0] in self.subjects for k in self.video_keys], dtype=bool)
            kept_subjects = _sorted_subjects({self.video_keys[v][0] for v in
                                              np.unique(anchor_video).tolist()})
            anchors = anchors[keep_video[anchor_video]]
            if not len(anchors):
                raise self._no_samples(
                    'after the subject filter',
                    f'subjects={self.subjects} keeps none of its {len(anchor_video)} sample(s)'
                    + (f' (subset_frac={self.subset_frac} kept windows of subjects '
                       f'{kept_subjects} only)' if self.subset_frac < 1.0 else '')
                    + '; pass subjects=None (dataset.subjects) or an annotation file of those '
                    'subjects')
        if self.indices is not None:
            num_rows = len(anchors)
            if isinstance(self.indices, int):
                anchors = anchors[:self.indices] if self.indices >= 0 else \
                    anchors[self.indices:]
            else:
                anchors = anchors[np.asarray(self.indices, dtype=np.int64)]
            if not len(anchors):
                raise self._no_samples('after the indices selection',
                                       f'indices={self.indices!r} selects none of its '
                                       f'{num_rows} sample(s)')
        self.windows = win
        self.anchors = anchors
        self.row_video = win.video[anchors].astype(np.int32)
        self.frame_index = win.target(anchors)

        arrays: Dict[str, np.ndarray] = {
            'keypoints_2d': np.ascontiguousarray(kpts_all[self.frame_index], dtype=np.float32)
        }
        if scores_all is not None:
            arrays['keypoint_scores'] = np.ascontiguousarray(scores_all[self.frame_index],
                                                             dtype=np.float32)
        arrays['next_index'] = win.next_rows(anchors, self.next_step)
        if self.test_mode or self.with_3d:
            s3d = self._array(ann, 'S', num_frames, 4)[self.frame_index, :, :3]
            s3d = s3d.astype(np.float32)
            if not np.isfinite(s3d).all():
                raise ValueError(f'H36MLiftingDataset: "S" in {self.ann_file} contains NaN or '
                                 'inf')
            arrays['keypoints_3d'] = s3d - s3d[:, :1]
        if self.test_mode:
            arrays['img_paths'] = npz_array(ann, 'imgname', self.ann_file)[self.frame_index]
        else:
            if self.labelled_subjects is None:
                arrays['has_3d'] = subsample_labelled(len(anchors), self.labelled_fraction,
                                                      self.labelled_seed)
            else:
                pool_video = np.array([k[0] in self.labelled_subjects for k in self.video_keys],
                                      dtype=bool)
                pool = np.flatnonzero(pool_video[self.row_video])
                if self.with_3d and not len(pool):
                    raise ValueError(f'H36MLiftingDataset: labelled_subjects '
                                     f'{self.labelled_subjects} have no rows in {self.ann_file}')
                has_3d = np.zeros(len(anchors), dtype=bool)
                has_3d[pool] = subsample_labelled(len(pool), self.labelled_fraction,
                                                  self.labelled_seed)
                arrays['has_3d'] = has_3d
            if not self.with_3d:
                del arrays['has_3d']  # unsupervised training: no 3D leaves this function
        if self.camera_param_file is not None:
            self.camera_param = mm.camera_param
            missing = sorted({(s, c) for s, _, c in self.video_keys} - set(mm.camera_param))
            if missing:
                raise KeyError(f'H36MLiftingDataset: {self.camera_param_file} has no '
                               f'parameters for (subject, camera) {missing[:5]}')
        print_log(
            f'H36MLiftingDataset: {len(anchors)} samples from {num_frames} frames of '
            f'{len(self.video_keys)} videos ({osp.basename(self.ann_file)}, 2D: '
            f'{self.keypoint_2d_src}) in {time.perf_counter() - tic:.1f} s',
            logger='current')
        ann.close()  # nothing refers to the file any more (the dataset stays picklable)
        return arrays

    def _no_samples(self, step: str, detail: str) -> ValueError:
        """The error for an empty selection: which step emptied it, and what the file holds."""
        subjects = _sorted_subjects({k[0] for k in self.video_keys})
        actions = sorted({k[1].split('_')[0] for k in self.video_keys})
        return ValueError(f'H36MLiftingDataset: no samples in {self.ann_file} {step}: {detail}. '
                          f'The file holds subjects {subjects} and actions {actions}')

    # ----------------------------------------------------------------- introspection
    def window_frames(self, rows: Optional[np.ndarray] = None) -> np.ndarray:
        """Annotation-file rows of the frames of each sample's window, ``(n, seq_len)``."""
        anchors = self.anchors if rows is None else self.anchors[np.asarray(rows)]
        return self.windows.frames(anchors)

    def row_keys(self, rows: Optional[np.ndarray] = None) -> List[Tuple[str, str, str]]:
        """``(subject, action, camera)`` of samples (all by default)."""
        video = self.row_video if rows is None else self.row_video[np.asarray(rows)]
        return [self.video_keys[v] for v in video.tolist()]
