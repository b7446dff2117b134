"""Convert the DeepMimic mocap clips shipped with PyPI ``pybullet`` to Human3.6M-17 joints.

The ``pybullet`` wheel ships ``pybullet_data/data/motions/humanoid3d_*.txt`` (DeepMimic
reference motions, Peng et al. 2018) and the matching skeleton
``pybullet_data/humanoid/humanoid.urdf``. Each clip is JSON ``{"Loop": ..., "Frames": [...]}``
with 44 numbers per key frame::

    [duration, root_pos(3), root_rot(4), chest(4), neck(4),
     right_hip(4), right_knee(1), right_ankle(4), right_shoulder(4), right_elbow(1),
     left_hip(4), left_knee(1), left_ankle(4), left_shoulder(4), left_elbow(1)]

Quaternions are stored ``(w, x, y, z)`` (``HumanoidPoseInterpolator`` reorders them to
pybullet's ``(x, y, z, w)``); knees/elbows are revolute angles in radians about the URDF axis.
``duration`` is the time from this key frame to the next one (the last one is unused).

This module re-implements the kinematics in pure numpy: rotations are resampled to a uniform
frame rate (slerp for quaternions, linear for revolute angles and root position), then forward
kinematics with the URDF offsets at ``globalScaling=0.25`` (as the pybullet DeepMimic envs load
it) gives joint positions, which are mapped to Human3.6M-17 order.

Output convention:
    * millimetres, float32, global trajectory (not root-centred);
    * right-handed Z-up world: ``(x, y, z)_out = (x, -z, y)_deepmimic`` (DeepMimic is Y-up).
      With an identity root rotation the character faces +x, its right side is -y
      (``right = forward x up``) and up is +z.

Synthesised Human3.6M joints (not URDF joints):
    * 0 pelvis     = ``root`` joint (midway between the two hip joints at this skeleton);
    * 7 spine      = ``chest`` joint (23.6 cm above the root, close to H36M's spine joint);
    * 8 thorax     = ``neck`` joint (base of the neck, at shoulder height);
    * 9 neck/nose  = front of the head sphere at its centre height, i.e. head-sphere centre
      + radius along the neck link's forward (+x) axis;
    * 10 head top  = top of the head sphere, i.e. head-sphere centre + radius along the neck
      link's up (+y) axis (the head sphere is the ``neck`` link's collision sphere);
    * 13/16 wrists = the fixed ``left_wrist``/``right_wrist`` joints.

Usage::

    python tools/dataset_converters/pybullet_mocap.py \
        [--src DIR_CONTAINING_pybullet_data] --out data/pybullet_mocap/h36m17_mocap.npz

Only ``numpy`` is needed; ``pybullet`` is imported solely to locate ``pybullet_data`` when
``--src`` is not given.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import os.path as osp
import sys
import tempfile
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

URDF_SCALE = 0.25  # DeepMimic envs: loadURDF("humanoid/humanoid.urdf", globalScaling=0.25)
DEFAULT_FPS = 50  # Human3.6M frame rate
FRAME_LEN = 44
CLIP_PREFIX = 'humanoid3d_'

# Mocap channel layout after the duration: (URDF joint name, number of values).
MOTION_CHANNELS: Tuple[Tuple[str, int], ...] = (
    ('root_pos', 3),
    ('root_rot', 4),
    ('chest', 4),
    ('neck', 4),
    ('right_hip', 4),
    ('right_knee', 1),
    ('right_ankle', 4),
    ('right_shoulder', 4),
    ('right_elbow', 1),
    ('left_hip', 4),
    ('left_knee', 1),
    ('left_ankle', 4),
    ('left_shoulder', 4),
    ('left_elbow', 1),
)

H36M_JOINT_NAMES: Tuple[str, ...] = (
    'pelvis', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', 'left_knee', 'left_ankle',
    'spine', 'thorax', 'neck_nose', 'head_top', 'left_shoulder', 'left_elbow', 'left_wrist',
    'right_shoulder', 'right_elbow', 'right_wrist')

# H36M index -> source point name (URDF joint name, or a synthesised head point).
H36M_SOURCES: Tuple[str, ...] = (
    'root', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', 'left_knee', 'left_ankle',
    'chest', 'neck', 'nose', 'head_top', 'left_shoulder', 'left_elbow', 'left_wrist',
    'right_shoulder', 'right_elbow', 'right_wrist')

# Y-up (DeepMimic) -> right-handed Z-up: x' = x, y' = -z, z' = y (det = +1).
YUP_TO_ZUP = np.array([[1., 0., 0.], [0., 0., -1.], [0., 1., 0.]])


# --------------------------------------------------------------------------------------------
# Rotation helpers (quaternions are (w, x, y, z), vectorised over leading axes)
# --------------------------------------------------------------------------------------------
def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Normalise quaternions to unit length.

    Args:
        q: ``(..., 4)`` quaternions.

    Returns:
        ``(..., 4)`` unit quaternions.
    """
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Convert ``(w, x, y, z)`` quaternions to rotation matrices.

    Args:
        q: ``(..., 4)`` quaternions (normalised here, the files store ~1e-6 deviations).

    Returns:
        ``(..., 3, 3)`` rotation matrices acting on column vectors.
    """
    w, x, y, z = np.moveaxis(quat_normalize(q), -1, 0)
    rot = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)
    ], axis=-1)
    return rot.reshape(rot.shape[:-1] + (3, 3))


def axis_angle_to_matrix(axis: Sequence[float], angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula for a fixed axis and a batch of angles.

    Args:
        axis: Rotation axis (3,), normalised here.
        angle: ``(...)`` angles in radians.

    Returns:
        ``(..., 3, 3)`` rotation matrices.
    """
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    kx = np.array([[0., -k[2], k[1]], [k[2], 0., -k[0]], [-k[1], k[0], 0.]])
    a = np.asarray(angle, dtype=np.float64)[..., None, None]
    return np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * (kx @ kx)


def rpy_to_matrix(rpy: Sequence[float]) -> np.ndarray:
    """URDF fixed-axis roll/pitch/yaw to a rotation matrix (``Rz(yaw) Ry(pitch) Rx(roll)``).

    Args:
        rpy: ``(roll, pitch, yaw)`` in radians.

    Returns:
        ``(3, 3)`` rotation matrix.
    """
    r, p, y = rpy
    return (axis_angle_to_matrix((0, 0, 1), y) @ axis_angle_to_matrix((0, 1, 0), p)
            @ axis_angle_to_matrix((1, 0, 0), r))


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Shortest-path spherical linear interpolation.

    Args:
        q0: ``(..., 4)`` start quaternions.
        q1: ``(..., 4)`` end quaternions.
        t: ``(...)`` fractions in [0, 1] (broadcast against the quaternion batch).

    Returns:
        ``(..., 4)`` unit quaternions; ``t=0`` gives ``q0``, ``t=1`` gives ``q1`` (up to sign).
    """
    q0 = quat_normalize(q0)
    q1 = quat_normalize(q1)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    # q and -q are the same rotation: flip to take the short arc.
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-8  # nearly identical: lerp avoids 0/0
    safe = np.where(near, 1.0, sin_theta)
    w0 = np.where(near, 1 - t, np.sin((1 - t) * theta) / safe)
    w1 = np.where(near, t, np.sin(t * theta) / safe)
    return quat_normalize(w0 * q0 + w1 * q1)


# --------------------------------------------------------------------------------------------
# Skeleton (URDF)
# --------------------------------------------------------------------------------------------
@dataclass
class UrdfJoint:
    """One URDF joint, already scaled.

    Attributes:
        name: Joint name.
        jtype: ``fixed``, ``spherical`` or ``revolute``.
        parent: Parent link name.
        child: Child link name.
        offset: Joint origin in the parent link frame (metres, scaled).
        origin_rot: Joint-origin rotation (from ``rpy``).
        axis: Revolute axis in the joint frame.
    """
    name: str
    jtype: str
    parent: str
    child: str
    offset: np.ndarray
    origin_rot: np.ndarray
    axis: np.ndarray


@dataclass
class Skeleton:
    """Kinematic tree parsed from ``humanoid.urdf``.

    Attributes:
        joints: Joints in topological order (parents before children).
        base_link: Name of the URDF base link.
        head_center: Head-sphere centre in the ``neck`` link frame (metres, scaled).
        head_radius: Head-sphere radius (metres, scaled).
    """
    joints: List[UrdfJoint]
    base_link: str
    head_center: np.ndarray
    head_radius: float


def _floats(text: Optional[str], n: int, default: float = 0.0) -> np.ndarray:
    if text is None:
        return np.full(n, default)
    vals = [float(v) for v in text.split()]
    if len(vals) != n:
        raise ValueError(f'expected {n} numbers, got {text!r}')
    return np.array(vals)


def load_skeleton(urdf_path: str, scale: float = URDF_SCALE) -> Skeleton:
    """Parse joint offsets, axes and the head sphere from the DeepMimic humanoid URDF.

    Args:
        urdf_path: Path to ``humanoid.urdf``.
        scale: Global scaling applied to all lengths (pybullet's ``globalScaling``).

    Returns:
        The scaled :class:`Skeleton`.

    Raises:
        FileNotFoundError: If the URDF is missing.
        ValueError: If the URDF lacks joints the mocap needs or a head sphere.
    """
    if not osp.isfile(urdf_path):
        raise FileNotFoundError(f'URDF not found: {urdf_path}')
    with open(urdf_path, 'rb') as f:
        # pybullet 3.2.x ships humanoid.urdf with a trailing NUL byte that expat rejects.
        text = f.read().rstrip(b'\x00 \t\r\n')
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f'{urdf_path}: malformed URDF ({e})') from e
    joints = []
    for el in root.findall('joint'):
        origin = el.find('origin')
        axis_el = el.find('axis')
        joints.append(
            UrdfJoint(
                name=el.get('name'),
                jtype=el.get('type'),
                parent=el.find('parent').get('link'),
                child=el.find('child').get('link'),
                offset=_floats(None if origin is None else origin.get('xyz'), 3) * scale,
                origin_rot=rpy_to_matrix(
                    _floats(None if origin is None else origin.get('rpy'), 3)),
                # URDF default axis is (1, 0, 0).
                axis=np.array([1.0, 0.0, 0.0])
                if axis_el is None else _floats(axis_el.get('xyz'), 3)))
    children = {j.child for j in joints}
    bases = [lk.get('name') for lk in root.findall('link') if lk.get('name') not in children]
    if len(bases) != 1:
        raise ValueError(f'{urdf_path}: expected one base link, found {bases}')
    # Topological order so FK can run in a single pass.
    ordered: List[UrdfJoint] = []
    known = {bases[0]}
    pending = list(joints)
    while pending:
        ready = [j for j in pending if j.parent in known]
        if not ready:
            raise ValueError(f'{urdf_path}: joints not connected to the base: '
                             f'{[j.name for j in pending]}')
        for j in ready:
            ordered.append(j)
            known.add(j.child)
            pending.remove(j)
    needed = {name for name, _ in MOTION_CHANNELS[2:]} | {'root', 'left_wrist', 'right_wrist'}
    missing = needed - {j.name for j in ordered}
    if missing:
        raise ValueError(f'{urdf_path}: missing joints {sorted(missing)}')
    # The head is the neck link's collision sphere; its geometry defines nose and head top.
    neck_link = next((lk for lk in root.findall('link') if lk.get('name') == 'neck'), None)
    sphere = None if neck_link is None else neck_link.find('collision/geometry/sphere')
    if sphere is None:
        raise ValueError(f'{urdf_path}: link "neck" has no collision sphere (head)')
    head_origin = neck_link.find('collision/origin')
    head_center = _floats(None if head_origin is None else head_origin.get('xyz'), 3) * scale
    return Skeleton(ordered, bases[0], head_center, float(sphere.get('radius')) * scale)


# --------------------------------------------------------------------------------------------
# Motion parsing / resampling
# --------------------------------------------------------------------------------------------
def load_motion(path: str) -> Dict[str, np.ndarray]:
    """Read a DeepMimic ``humanoid3d_*.txt`` clip.

    Args:
        path: Clip file path.

    Returns:
        Dict with ``durations`` ``(N,)`` and one array per channel of
        :data:`MOTION_CHANNELS` (``(N, 3)``, ``(N, 4)`` or ``(N,)``).

    Raises:
        ValueError: On malformed JSON, wrong frame length, non-finite values or bad timing,
            naming the file.
    """
    try:
        with open(path, 'r', encoding='utf-8') as f:
            data = json.load(f)
        frames = data['Frames']
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f'{path}: not a DeepMimic motion file ({e})') from e
    if len(frames) < 2:
        raise ValueError(f'{path}: need at least 2 frames, got {len(frames)}')
    for i, fr in enumerate(frames):
        if not isinstance(fr, list) or len(fr) != FRAME_LEN:
            got = len(fr) if isinstance(fr, list) else type(fr).__name__
            raise ValueError(f'{path}: frame {i} has length {got}, expected {FRAME_LEN}')
    arr = np.asarray(frames, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f'{path}: non-finite value at frame {bad[0]}, column {bad[1]}')
    durations = arr[:, 0]
    # The last duration is never used (no next key frame); all others must advance time.
    if np.any(durations[:-1] <= 0):
        i = int(np.argmax(durations[:-1] <= 0))
        raise ValueError(f'{path}: frame {i} has non-positive duration {durations[i]}')
    out = {'durations': durations}
    col = 1
    for name, n in MOTION_CHANNELS:
        vals = arr[:, col:col + n]
        out[name] = vals[:, 0] if n == 1 else vals
        col += n
        if n == 4:
            norms = np.linalg.norm(vals, axis=1)
            if np.any(norms < 0.5):
                i = int(np.argmax(norms < 0.5))
                raise ValueError(f'{path}: frame {i} has a degenerate {name} quaternion')
    return out


def resample_motion(motion: Dict[str, np.ndarray], fps: float) -> Dict[str, np.ndarray]:
    """Resample a key-framed motion to uniform time steps.

    Key frame ``i`` sits at ``sum(durations[:i])``. Samples are taken at ``k / fps`` for all
    ``k`` with ``k / fps <= total duration``; quaternions are slerped, revolute angles and the
    root position are linearly interpolated (as pybullet's ``HumanoidPoseInterpolator``).

    Args:
        motion: Output of :func:`load_motion`.
        fps: Target frame rate.

    Returns:
        Dict with the same channel keys, sampled uniformly, plus ``times`` ``(T,)``.
    """
    key_times = np.concatenate([[0.0], np.cumsum(motion['durations'][:-1])])
    total = key_times[-1]
    n_out = int(np.floor(total * fps + 1e-6)) + 1
    times = np.minimum(np.arange(n_out) / fps, total)
    seg = np.clip(np.searchsorted(key_times, times, side='right') - 1, 0, len(key_times) - 2)
    frac = np.clip((times - key_times[seg]) / (key_times[seg + 1] - key_times[seg]), 0.0, 1.0)
    out = {'times': times}
    for name, n in MOTION_CHANNELS:
        v = motion[name]
        a, b = v[seg], v[seg + 1]
        if n == 4:
            out[name] = slerp(a, b, frac)
        elif n == 3:
            out[name] = a + frac[:, None] * (b - a)
        else:
            out[name] = a + frac * (b - a)
    return out


# --------------------------------------------------------------------------------------------
# Forward kinematics
# --------------------------------------------------------------------------------------------
def forward_kinematics(skeleton: Skeleton,
                       pose: Dict[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray],
                                                            Dict[str, np.ndarray]]:
    """Forward kinematics in the DeepMimic (Y-up, metres) world frame.

    The mocap root position/orientation is the pose of the URDF base link (as
    ``resetBasePositionAndOrientation`` in the pybullet envs). A joint's world position is
    ``p_parent + R_parent @ offset`` and its child link rotates by
    ``R_parent @ R_origin @ R_joint`` (quaternion for spherical, axis-angle for revolute,
    identity for fixed joints).

    Args:
        skeleton: Parsed URDF skeleton.
        pose: Dict with ``root_pos`` ``(T, 3)``, ``root_rot`` ``(T, 4)`` and one entry per
            movable joint (``(T, 4)`` quaternion or ``(T,)`` angle). Missing joints are at rest.

    Returns:
        ``(positions, link_rotations)``: joint name -> ``(T, 3)`` world position, and link
        name -> ``(T, 3, 3)`` world rotation.
    """
    root_pos = np.asarray(pose['root_pos'], dtype=np.float64)
    n = root_pos.shape[0]
    link_pos = {skeleton.base_link: root_pos}
    link_rot = {skeleton.base_link: quat_to_matrix(pose['root_rot'])}
    joint_pos: Dict[str, np.ndarray] = {}
    for j in skeleton.joints:
        p_parent, r_parent = link_pos[j.parent], link_rot[j.parent]
        pos = p_parent + r_parent @ j.offset
        if j.jtype == 'spherical':
            local = quat_to_matrix(pose[j.name]) if j.name in pose else np.eye(3)
        elif j.jtype in ('revolute', 'continuous'):
            local = (axis_angle_to_matrix(j.axis, pose[j.name]) if j.name in pose else np.eye(3))
        elif j.jtype == 'fixed':
            local = np.eye(3)
        else:
            raise ValueError(f'unsupported joint type {j.jtype!r} for joint {j.name}')
        rot = np.broadcast_to(r_parent @ j.origin_rot @ local, (n, 3, 3))
        joint_pos[j.name] = pos
        link_pos[j.child] = pos
        link_rot[j.child] = rot
    return joint_pos, link_rot


def h36m_points(skeleton: Skeleton, pose: Dict[str, np.ndarray]) -> np.ndarray:
    """Human3.6M-17 joints in the DeepMimic frame (Y-up, metres).

    Args:
        skeleton: Parsed URDF skeleton.
        pose: Pose dict as for :func:`forward_kinematics`.

    Returns:
        ``(T, 17, 3)`` float64 positions in :data:`H36M_JOINT_NAMES` order.
    """
    joint_pos, link_rot = forward_kinematics(skeleton, pose)
    neck_p, neck_r = joint_pos['neck'], link_rot['neck']
    c, r = skeleton.head_center, skeleton.head_radius
    # Nose/head top are rigid points of the neck link (the head sphere), see module docstring.
    points = dict(joint_pos)
    points['nose'] = neck_p + neck_r @ (c + np.array([r, 0.0, 0.0]))
    points['head_top'] = neck_p + neck_r @ (c + np.array([0.0, r, 0.0]))
    return np.stack([points[s] for s in H36M_SOURCES], axis=1)


def yup_m_to_zup_mm(points: np.ndarray) -> np.ndarray:
    """DeepMimic Y-up metres -> right-handed Z-up millimetres (``(x, -z, y) * 1000``).

    Args:
        points: ``(..., 3)`` positions.

    Returns:
        ``(..., 3)`` converted positions.
    """
    return (np.asarray(points) @ YUP_TO_ZUP.T) * 1000.0


def rest_pose(n: int = 1) -> Dict[str, np.ndarray]:
    """Zero pose: root at the origin, identity rotations, zero revolute angles.

    Args:
        n: Number of frames.

    Returns:
        Pose dict for :func:`forward_kinematics`.
    """
    pose = {'root_pos': np.zeros((n, 3))}
    for name, k in MOTION_CHANNELS[1:]:
        pose[name] = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)) if k == 4 else np.zeros(n)
    return pose


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------
def locate_pybullet_data(src: Optional[str]) -> str:
    """Find the ``pybullet_data`` directory.

    Args:
        src: Either ``pybullet_data`` itself or a directory containing it (e.g.
            site-packages). ``None`` imports ``pybullet_data`` to find it.

    Returns:
        Path of the ``pybullet_data`` directory.

    Raises:
        FileNotFoundError: If the directory does not exist or lacks the expected files.
    """
    if src is None:
        try:
            import pybullet_data  # only used to find the data dir
        except ImportError as e:
            raise FileNotFoundError(
                'pybullet is not installed; pass --src DIR containing pybullet_data') from e
        path = pybullet_data.getDataPath()
    else:
        if not osp.isdir(src):
            raise FileNotFoundError(f'--src directory does not exist: {src}')
        path = src if osp.isdir(osp.join(src, 'data', 'motions')) else osp.join(
            src, 'pybullet_data')
    for rel in ('humanoid/humanoid.urdf', 'data/motions'):
        if not osp.exists(osp.join(path, rel)):
            raise FileNotFoundError(f'{osp.join(path, rel)} not found (is {path} pybullet_data?)')
    return path


def list_clips(data_dir: str) -> List[Tuple[str, str]]:
    """List ``(clip_name, path)`` of all ``humanoid3d_*.txt`` clips, sorted by name.

    Args:
        data_dir: ``pybullet_data`` directory.

    Returns:
        Sorted list of clip names (prefix and extension stripped) with file paths.
    """
    motion_dir = osp.join(data_dir, 'data', 'motions')
    clips = sorted((f[len(CLIP_PREFIX):-4], osp.join(motion_dir, f))
                   for f in os.listdir(motion_dir)
                   if f.startswith(CLIP_PREFIX) and f.endswith('.txt'))
    if not clips:
        raise FileNotFoundError(f'no {CLIP_PREFIX}*.txt clips in {motion_dir}')
    return clips


def convert_clip(path: str, skeleton: Skeleton, fps: float = DEFAULT_FPS) -> np.ndarray:
    """Convert one clip to Human3.6M-17 positions.

    Args:
        path: Clip file.
        skeleton: Parsed URDF skeleton.
        fps: Output frame rate.

    Returns:
        ``(T, 17, 3)`` float32 millimetres, Z-up.

    Raises:
        ValueError: If the file is malformed or the result is not finite.
    """
    motion = resample_motion(load_motion(path), fps)
    pts = yup_m_to_zup_mm(h36m_points(skeleton, motion)).astype(np.float32)
    if not np.all(np.isfinite(pts)):
        raise ValueError(f'{path}: forward kinematics produced non-finite values')
    return pts


def convert_all(data_dir: str,
                fps: float = DEFAULT_FPS,
                verbose: bool = False) -> Dict[str, np.ndarray]:
    """Convert every ``humanoid3d_*.txt`` clip, dropping exact duplicates.

    Args:
        data_dir: ``pybullet_data`` directory.
        fps: Output frame rate.
        verbose: Print per-clip frame counts.

    Returns:
        Ordered dict clip name -> ``(T, 17, 3)`` float32 mm.
    """
    skeleton = load_skeleton(osp.join(data_dir, 'humanoid', 'humanoid.urdf'))
    clips: Dict[str, np.ndarray] = {}
    seen: Dict[str, str] = {}
    for name, path in list_clips(data_dir):
        if name in ('fps', 'joint_names', 'clip_names'):
            raise ValueError(f'{path}: clip name {name!r} collides with an npz metadata key')
        pts = convert_clip(path, skeleton, fps)
        digest = hashlib.sha1(pts.tobytes()).hexdigest()
        if digest in seen:
            # Same motion under another name would double-weight it in training.
            warnings.warn(f'{path}: identical to clip {seen[digest]!r}, dropped')
            continue
        seen[digest] = name
        clips[name] = pts
        if verbose:
            print(f'{name:>16s}: {pts.shape[0]:5d} frames')
    return clips


def save_npz_atomic(out_path: str, clips: Dict[str, np.ndarray], fps: float) -> None:
    """Write clips and metadata with ``np.savez_compressed`` via a temp file + ``os.replace``.

    Args:
        out_path: Destination ``.npz``.
        clips: Clip name -> ``(T, 17, 3)`` float32.
        fps: Frame rate stored as ``fps``.
    """
    out_dir = osp.dirname(osp.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.npz', dir=out_dir)
    try:
        with os.fdopen(fd, 'wb') as f:
            np.savez_compressed(
                f,
                fps=np.int32(fps),
                joint_names=np.array(H36M_JOINT_NAMES),
                clip_names=np.array(list(clips)),
                **{k: v.astype(np.float32) for k, v in clips.items()})
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; make the artefact world-readable
        os.replace(tmp, out_path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--src', default=None,
                   help='pybullet_data dir or a dir containing it (default: installed pybullet)')
    p.add_argument('--out', default='data/pybullet_mocap/h36m17_mocap.npz', help='output .npz')
    p.add_argument('--fps', type=int, default=DEFAULT_FPS, help='output frame rate')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point."""
    args = parse_args(argv)
    data_dir = locate_pybullet_data(args.src)
    clips = convert_all(data_dir, args.fps, verbose=True)
    save_npz_atomic(args.out, clips, args.fps)
    total = sum(v.shape[0] for v in clips.values())
    print(f'wrote {args.out}: {len(clips)} clips, {total} frames @ {args.fps} fps, '
          f'{osp.getsize(args.out) / 1024:.0f} KiB')
    return 0


if __name__ == '__main__':
    sys.exit(main())
