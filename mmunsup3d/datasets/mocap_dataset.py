"""2D poses from real motion capture seen through fixed, Human3.6M-like cameras."""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmpose.registry import DATASETS
from ..utils.paths import project_roots
from ..utils.safe_pickle import npz_array
from .cameras import camera_to_pixel, sample_h36m_like_camera, world_to_camera
from .pose_array_dataset import PoseArrayDataset, subsample_labelled

DEFAULT_MOCAP = 'data/pybullet_mocap/h36m17_mocap.npz'


def resolve_data_file(path: str, data_root: str = '') -> str:
    """Find a data file given relative to ``data_root``, the working directory or the repo.

    Falls back to the repository (or the installed package's ``.mim``) so configs inherited
    with ``mmunsup3d::`` work from any folder.
    """
    candidates = [osp.join(data_root, path)] if data_root else []
    candidates.append(path)
    if not osp.isabs(path):
        candidates += [osp.join(root, path) for root in project_roots()]
    for cand in candidates:
        if osp.isfile(cand):
            return cand
    raise FileNotFoundError(f'Data file "{path}" not found (looked in: {candidates})')


@DATASETS.register_module()
class MocapProjectionDataset(PoseArrayDataset):
    """The shipped pybullet/DeepMimic motion capture, projected to 2D by fixed cameras.

    Split (mirrors Human3.6M's protocol: the same kinds of motion, different performances):
    every clip's last ``test_fraction`` of frames is held out for testing, with a gap of
    ``gap_frames`` frames between the two parts so that no test pose is a near-copy of a
    training pose. Each clip gets ``num_train_cameras + num_test_cameras`` cameras drawn once
    from ``seed``; training frames are seen only through the training cameras and test frames
    only through the test cameras, so no test frame's 2D is ever seen in training. The camera
    set is fixed: 2D poses are never re-projected through new cameras, which would leak 3D
    structure into an unsupervised method.

    Training samples carry 2D only (3D only with ``with_3d`` and then only for the
    ``labelled_fraction`` of rows, for semi-/fully supervised baselines). Test samples carry 2D
    plus root-relative camera-frame 3D in metres, in the fields MMPose's ``MPJPE`` reads.

    Args:
        data_file: npz written by ``tools/dataset_converters/pybullet_mocap.py``.
        data_root: optional folder ``data_file`` is relative to.
        split: ``'train'`` or ``'test'``.
        clips: clip names to use (default ``None``: all; an empty list is an error).
        test_fraction: fraction of each clip held out (at its end).
        gap_frames: frames dropped between the training and test parts.
        num_train_cameras: cameras per clip for training (Human3.6M has 4).
        num_test_cameras: further cameras per clip for testing.
        frame_step: use every ``frame_step``-th frame.
        seed: seed of the camera draw.
        labelled_fraction: fraction of training rows that carry 3D when ``with_3d``.
        labelled_seed: seed choosing the labelled rows.
        **kwargs: ``test_mode``, ``with_3d``, ``with_next``, ``metainfo`` of the base class.
    """

    def __init__(self,
                 data_file: str = DEFAULT_MOCAP,
                 data_root: str = '',
                 split: str = 'train',
                 clips: Optional[Sequence[str]] = None,
                 test_fraction: float = 0.2,
                 gap_frames: int = 10,
                 num_train_cameras: int = 4,
                 num_test_cameras: int = 2,
                 frame_step: int = 1,
                 seed: int = 0,
                 labelled_fraction: float = 1.0,
                 labelled_seed: int = 0,
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f'split must be "train" or "test", got "{split}"')
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f'test_fraction must be in (0, 1), got {test_fraction}')
        self.data_file = resolve_data_file(data_file, data_root)
        if clips is not None:
            if isinstance(clips, str):  # a string would be taken as a list of letters
                raise TypeError(f'MocapProjectionDataset: clips must be a list of clip names, '
                                f'got the string "{clips}" (write clips=["{clips}"])')
            clips = [str(c) for c in clips]
            if not clips:
                raise ValueError(f'MocapProjectionDataset: clips=[] selects no clip of '
                                 f'{self.data_file}; omit "clips" (or set clips=None) to use '
                                 'all clips, or list some')
        self.split = split
        self.clips = clips
        self.test_fraction = test_fraction
        self.gap_frames = gap_frames
        self.num_train_cameras = num_train_cameras
        self.num_test_cameras = num_test_cameras
        self.frame_step = frame_step
        self.seed = seed
        self.labelled_fraction = labelled_fraction
        self.labelled_seed = labelled_seed
        kwargs.setdefault('test_mode', split == 'test')
        super().__init__(**kwargs)

    def split_frames(self, num_frames: int) -> Dict[str, np.ndarray]:
        """Frame indices of the training and test parts of a clip."""
        n_test = max(1, int(round(num_frames * self.test_fraction)))
        n_train = num_frames - n_test - self.gap_frames
        if n_train < 1:
            raise ValueError(f'Clip of {num_frames} frames is too short for test_fraction='
                             f'{self.test_fraction} and gap_frames={self.gap_frames}')
        return dict(
            train=np.arange(0, n_train, self.frame_step),
            test=np.arange(num_frames - n_test, num_frames, self.frame_step))

    def load_arrays(self) -> Dict[str, np.ndarray]:
        # allow_pickle=False: an object array would unpickle arbitrary objects; npz_array
        # refuses it with an error naming the file and the key.
        with np.load(self.data_file, allow_pickle=False) as data:
            if 'clip_names' not in data.files:
                raise KeyError(f'{self.data_file} has no "clip_names" entry (has '
                               f'{sorted(data.files)})')
            names = [str(n) for n in npz_array(data, 'clip_names', self.data_file).ravel()]
            if not names:
                raise ValueError(f'MocapProjectionDataset: {self.data_file} holds no clips '
                                 '("clip_names" is empty); regenerate it with '
                                 'tools/dataset_converters/pybullet_mocap.py')
            missing = sorted(set(names) - set(data.files))
            if missing:
                raise KeyError(f'Clip(s) {missing} are listed in "clip_names" of '
                               f'{self.data_file} but have no array (has {sorted(data.files)})')
            clips = {}
            for n in names:
                arr = npz_array(data, n, self.data_file)
                if arr.dtype.kind not in 'iuf':
                    raise ValueError(f'Clip "{n}" in {self.data_file} must be numeric (mm), got '
                                     f'dtype {arr.dtype}')
                clips[n] = arr.astype(np.float64) / 1000.0  # mm -> m
        if self.clips is not None:
            missing = sorted(set(self.clips) - set(clips))
            if missing:
                raise KeyError(f'Unknown clip(s) {missing} in {self.data_file}; '
                               f'available: {sorted(clips)}')
            names = list(self.clips)
        kpts2d: List[np.ndarray] = []
        kpts3d: List[np.ndarray] = []
        paths: List[np.ndarray] = []
        nxt: List[np.ndarray] = []
        offset = 0
        for clip_idx, name in enumerate(sorted(clips)):
            if name not in names:
                continue
            world = clips[name]
            if world.ndim != 3 or world.shape[1:] != (17, 3):
                raise ValueError(f'Clip "{name}" in {self.data_file} must be (T, 17, 3), '
                                 f'got {world.shape}')
            if not np.isfinite(world).all():
                raise ValueError(f'Clip "{name}" in {self.data_file} contains NaN or inf')
            frames = self.split_frames(len(world))[self.split]
            # One camera stream per clip, keyed by the clip's sorted position, so adding a
            # clip filter does not change the cameras of the others.
            rng = np.random.default_rng([self.seed, clip_idx])
            target = world[:, 0].mean(0) * np.array([1.0, 1.0, 0.0])
            cams = [sample_h36m_like_camera(rng, target)
                    for _ in range(self.num_train_cameras + self.num_test_cameras)]
            cams = cams[:self.num_train_cameras] if self.split == 'train' else \
                cams[self.num_train_cameras:]
            action = name.replace('_', '')
            for cam_idx, cam in enumerate(cams):
                cam_pts = world_to_camera(world[frames], cam['R'], cam['T'])
                if (cam_pts[..., 2] <= 0.1).any():
                    raise ValueError(f'Clip "{name}" passes behind camera {cam_idx}')
                kpts2d.append(camera_to_pixel(cam_pts, cam['f'], cam['c']))
                kpts3d.append(cam_pts - cam_pts[:, :1])
                paths.append(np.array([f'mocap_{action}.cam{cam_idx}_{int(f):06d}.jpg'
                                       for f in frames]))
                seq_next = offset + np.arange(1, len(frames) + 1)
                seq_next[-1] = -1
                nxt.append(seq_next)
                offset += len(frames)
        arrays = dict(
            keypoints_2d=np.concatenate(kpts2d).astype(np.float32),
            keypoints_3d=np.concatenate(kpts3d).astype(np.float32),
            img_paths=np.concatenate(paths),
            next_index=np.concatenate(nxt).astype(np.int64))
        if self.split == 'train':
            arrays['has_3d'] = subsample_labelled(
                len(arrays['keypoints_2d']), self.labelled_fraction, self.labelled_seed)
            if not self.with_3d:
                # Unsupervised training: the 3D never leaves this function.
                del arrays['keypoints_3d'], arrays['has_3d']
        return arrays
