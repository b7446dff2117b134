"""2D poses from real motion capture seen through fixed, Human3.6M-like cameras."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmpose.registry import DATASETS
from ..structures.body_shape import rescale_bones, sample_bone_scales
from ..utils.paths import project_roots
from ..utils.safe_pickle import npz_array, open_npz
from .cameras import camera_to_pixel, sample_h36m_like_camera, world_to_camera
from .pose_array_dataset import PoseArrayDataset, subsample_labelled

DEFAULT_MOCAP = 'data/pybullet_mocap/h36m17_mocap.npz'

PROTOCOLS = ('tail', 'leave-motion-out')

# Related motions of the shipped clips. The leave-motion-out protocol keeps each group on one
# side of the split: holding out ``walk`` while training on ``run`` would still test a motion
# the model has essentially seen.
MOCAP_MOTION_GROUPS: Tuple[Tuple[str, ...], ...] = (
    ('dance_a', 'dance_b'),
    ('getup_facedown', 'getup_faceup'),
    ('kick', 'spinkick'),
    ('run', 'walk'),
)


def motion_folds(clip_frames: Dict[str, int],
                 groups: Optional[Sequence[Sequence[str]]] = MOCAP_MOTION_GROUPS,
                 num_folds: int = 5) -> List[List[str]]:
    """Assign whole motion groups to ``num_folds`` folds with balanced frame counts.

    Clips named in no group form a group of their own. Groups are taken largest first (by total
    frames; ties by their alphabetically first clip name) and each goes to the fold with the
    fewest frames so far (ties: the lowest fold index), so the result is deterministic and
    depends only on the clip names, their lengths and the groups.

    Args:
        clip_frames: frame count of every clip, ``{name: T}``.
        groups: clips that must fall into the same fold; ``None`` means no group.
        num_folds: number of folds, in ``[2, number of groups]``.

    Returns:
        ``num_folds`` lists of clip names, each sorted; every clip is in exactly one.

    Raises:
        TypeError: ``groups`` or a group is a string, or ``num_folds`` is not an int.
        ValueError: no clip, an empty group, a clip in two groups (or twice in one), a group
            naming a clip not in ``clip_frames``, or ``num_folds`` out of range.
    """
    if not clip_frames:
        raise ValueError('motion_folds: clip_frames is empty (no clip to assign to folds)')
    if isinstance(num_folds, bool) or not isinstance(num_folds, (int, np.integer)):
        raise TypeError(f'motion_folds: num_folds must be an int, got {num_folds!r}')
    if groups is None:
        groups = ()
    if isinstance(groups, str):
        raise TypeError(f'motion_folds: groups must be a list of lists of clip names, got the '
                        f'string "{groups}"')
    owner: Dict[str, int] = {}
    merged: List[List[str]] = []
    for gi, group in enumerate(groups):
        if isinstance(group, str):  # a string would be taken as a group of letters
            raise TypeError(f'motion_folds: each group must be a list of clip names, got the '
                            f'string "{group}" (write ["{group}"])')
        group = [str(c) for c in group]
        if not group:
            raise ValueError(f'motion_folds: group {gi} is empty')
        unknown = sorted(set(group) - set(clip_frames))
        if unknown:
            raise ValueError(f'motion_folds: group {gi} {group} names clip(s) {unknown} that '
                             f'are not in the data (clips: {sorted(clip_frames)})')
        for c in group:
            if c in owner:
                where = 'twice in group' if owner[c] == gi else f'in groups {owner[c]} and'
                raise ValueError(f'motion_folds: clip "{c}" is {where} {gi}; a clip may be '
                                 'in one group only')
            owner[c] = gi
        merged.append(sorted(group))
    merged += [[c] for c in sorted(clip_frames) if c not in owner]
    if not 2 <= num_folds <= len(merged):
        raise ValueError(f'motion_folds: num_folds must be in [2, {len(merged)}] (the number '
                         f'of motion groups), got {num_folds}')

    def group_frames(group: List[str]) -> int:
        return sum(int(clip_frames[c]) for c in group)

    merged.sort(key=lambda g: (-group_frames(g), g[0]))
    folds: List[List[str]] = [[] for _ in range(num_folds)]
    load = [0] * num_folds
    for group in merged:
        # min() returns the first minimum: ties go to the lowest fold index.
        target = min(range(num_folds), key=lambda i: load[i])
        folds[target] += group
        load[target] += group_frames(group)
    return [sorted(f) for f in folds]


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

    Two split protocols:

    - ``'tail'`` (default; mirrors Human3.6M's protocol: the same kinds of motion, different
      performances): every clip's last ``test_fraction`` of frames is held out for testing,
      with a gap of ``gap_frames`` frames between the two parts so that no test pose is a
      near-copy of a training pose.
    - ``'leave-motion-out'``: whole clips are held out. All clips of the file (whatever
      ``clips`` selects) are split into ``num_folds`` folds by :func:`motion_folds`, keeping
      each of ``motion_groups`` in one fold; fold ``fold`` is the test split (all its frames)
      and every other clip, all frames, is the training split. This measures generalisation to
      motions never seen in training. ``test_fraction`` and ``gap_frames`` are unused.

    Each clip gets ``num_train_cameras + num_test_cameras`` cameras drawn once
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
        clips: clip names to use (default ``None``: all; an empty list is an error). With
            ``'leave-motion-out'`` this only filters the clips of each side; it does not change
            which clips form a fold.
        test_fraction: fraction of each clip held out (at its end); ``'tail'`` only.
        gap_frames: frames dropped between the training and test parts; ``'tail'`` only.
        num_train_cameras: cameras per clip for training (Human3.6M has 4).
        num_test_cameras: further cameras per clip for testing.
        frame_step: use every ``frame_step``-th frame.
        seed: seed of the camera draw.
        labelled_fraction: fraction of training rows that carry 3D when ``with_3d``.
        labelled_seed: seed choosing the labelled rows.
        protocol: ``'tail'`` or ``'leave-motion-out'`` (see above).
        fold: held-out fold, in ``[0, num_folds)``; ``'leave-motion-out'`` only.
        num_folds: number of folds; ``'leave-motion-out'`` only.
        motion_groups: clips that must share a fold (default ``None``:
            :data:`MOCAP_MOTION_GROUPS`); clips in no group are groups of their own.
        bone_scale_std: ``'train'`` only: each training camera of each clip sees the clip on
            its own body, every bone's length multiplied by a log-normal factor with this
            standard deviation of its log (left and right equal; 0 = the data's one skeleton).
            The embedded clips share one skeleton, so without it a lifter can learn depth from
            2D bone lengths that hold for that skeleton only.
        **kwargs: ``test_mode``, ``with_3d``, ``with_next``, ``metainfo`` of the base class.

    Attributes:
        held_out_clips: the clips of the held-out fold (all of them, before the ``clips``
            filter), sorted; ``[]`` with ``'tail'``, where no clip is held out whole.
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
                 protocol: str = 'tail',
                 fold: int = 0,
                 num_folds: int = 5,
                 motion_groups: Optional[Sequence[Sequence[str]]] = None,
                 bone_scale_std: float = 0.0,
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f'split must be "train" or "test", got "{split}"')
        if protocol not in PROTOCOLS:
            raise ValueError(f'MocapProjectionDataset: unknown protocol "{protocol}"; choose '
                             f'one of {list(PROTOCOLS)}')
        if protocol == 'leave-motion-out':
            # num_folds against the number of groups is checked by motion_folds once the
            # clips are loaded; fold can be checked now, before the file is read.
            for key, val in (('fold', fold), ('num_folds', num_folds)):
                if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
                    raise TypeError(f'MocapProjectionDataset: {key} must be an int, got '
                                    f'{val!r}')
            if num_folds < 2:
                raise ValueError(f'MocapProjectionDataset: num_folds must be >= 2, got '
                                 f'{num_folds}')
            if not 0 <= fold < num_folds:
                raise ValueError(f'MocapProjectionDataset: fold must be in [0, {num_folds}) '
                                 f'for num_folds={num_folds}, got {fold}')
        if isinstance(bone_scale_std, bool) or not isinstance(bone_scale_std, (int, float)) \
                or not 0.0 <= bone_scale_std < 1.0:
            raise ValueError(f'MocapProjectionDataset: bone_scale_std must be a number in '
                             f'[0, 1), got {bone_scale_std!r}')
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
        self.protocol = protocol
        self.fold = fold
        self.num_folds = num_folds
        self.motion_groups = MOCAP_MOTION_GROUPS if motion_groups is None else motion_groups
        self.bone_scale_std = float(bone_scale_std)
        self.held_out_clips: List[str] = []  # filled by load_arrays
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
        # refuses it with an error naming the file and the key (as a damaged archive).
        with open_npz(self.data_file) as data:
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
        if self.protocol == 'leave-motion-out':
            # Folds from every clip of the file, so a clip filter cannot move a clip to
            # another fold; the filter then only narrows each side.
            self.held_out_clips = motion_folds({n: len(a) for n, a in clips.items()},
                                               self.motion_groups, self.num_folds)[self.fold]
            held = set(self.held_out_clips)
            names = [n for n in names if (n in held) == (self.split == 'test')]
            if not names:
                raise ValueError(
                    f'MocapProjectionDataset: the {self.split} split of fold {self.fold} '
                    f'(protocol "{self.protocol}", num_folds={self.num_folds}, held-out '
                    f'clips {self.held_out_clips}) has no clip left after the clip filter '
                    f'clips={self.clips}')
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
            if self.protocol == 'tail':
                frames = self.split_frames(len(world))[self.split]
            else:  # whole clip on one side; which side was settled above
                frames = np.arange(0, len(world), self.frame_step)
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
                body = world[frames]
                if self.split == 'train' and self.bone_scale_std > 0:
                    # Own stream (not the camera rng): the cameras stay those of std 0.
                    body_rng = np.random.default_rng([self.seed, clip_idx, cam_idx, 1])
                    body = rescale_bones(body, sample_bone_scales(body_rng, self.bone_scale_std))
                cam_pts = world_to_camera(body, cam['R'], cam['T'])
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
