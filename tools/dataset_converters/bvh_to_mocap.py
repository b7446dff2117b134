"""Convert BVH motion capture (e.g. CMU, Mixamo) to a Human3.6M-17 npz for MocapProjectionDataset.

Usage::

    python tools/dataset_converters/bvh_to_mocap.py OUT.npz IN1.bvh [IN2.bvh ...] \
        [--fps 50] [--keep-trajectory] [--no-rescale] [--reference REF.npz]

Kinematics: the rotation channels of a joint compose in the order listed,
``R_local = R_c1 @ R_c2 @ R_c3`` (degrees); ``R = R_parent @ R_local`` and
``pos = parent_pos + R_parent @ t``, where ``t`` is the joint's OFFSET, with the components that
have position channels replaced by those values (the root's are its absolute position).

Joints are looked up by name, the first present candidate winning (a ``prefix:`` namespace such
as Mixamo's ``mixamorig:`` is ignored). Rigs differ, so check the mapping for a new one:

* pelvis = ``Hips|pelvis``; hips = ``RightUpLeg|RightHip|rfemur``; knees =
  ``RightLeg|RightKnee|rtibia``; ankles = ``RightFoot|RightAnkle|rfoot`` (left alike; the
  lower-case names are CMU's ASF skeleton, where a bone's joint sits at its start);
* shoulders = ``RightArm|RightShoulder|rhumerus``: in CMU/Mixamo naming ``RightShoulder`` is the
  clavicle and ``RightArm`` the shoulder joint, so ``RightArm`` wins; elbows =
  ``RightForeArm|RightElbow|rradius``; wrists = ``RightHand|RightWrist|rhand``;
* synthesised: the pelvis is the midpoint of the two hips (the file's root is only required to
  exist: it often sits higher, at the lower back); thorax = midpoint of the shoulders; spine =
  midpoint(pelvis, thorax);
  head_top = a ``HeadTop_End`` joint (Mixamo) or the End Site of the head joint
  ``Head|head|Neck`` (that joint itself if it has neither); neck_nose = midpoint(head joint,
  head_top). These only approximate Human3.6M's markers.

Per clip, in this order: the up axis is read from ``mean(head_top - pelvis)``; if ``|y| > |z|``
the file is taken as Y-up and turned into our right-handed Z-up world by
``(x, y, z) -> (x, -z, y)``, else kept (a head below the pelvis is an error). BVH units vary (cm,
inches, arbitrary), so unless ``--no-rescale`` (numbers then taken as mm) the clip is scaled to
the mean thigh + shin length of ``--reference`` (default: the embedded mocap). z is then shifted
so the clip's lowest ankle sits at the reference floor (median over its clips of each clip's
lowest ankle). Unless ``--keep-trajectory`` the root's x/y is subtracted per frame, so the fixed
cameras of MocapProjectionDataset (aimed at the mean root) keep the actor in view. Frames are
kept with the stride ``max(1, round((1 / fps) / frame_time))``. Clip name = file stem without
non-alphanumerics (the dataset reads ``_`` as an action separator). All files are converted
before OUT is written (mkstemp + os.replace), so an error leaves no OUT and no temp file.
"""
import argparse
import os.path as osp
import re
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
for _path in (REPO, HERE):  # run as a script from anywhere; HERE for the sibling converter
    if _path not in sys.path:
        sys.path.insert(0, _path)

from mmunsup3d.datasets.mocap_dataset import DEFAULT_MOCAP, resolve_data_file  # noqa: E402
from mmunsup3d.structures import H36M_KEYPOINT_NAMES  # noqa: E402
# The same npz layout as the embedded data, written the same atomic way (mkstemp + os.replace).
from pybullet_mocap import save_npz_atomic  # noqa: E402

AXES = 'XYZ'
ROTATION_PLANES = {0: (1, 2), 1: (2, 0), 2: (0, 1)}  # cyclic, so every rotation is right-handed
CHANNELS = {f'{a}{kind}'.lower(): (i, kind) for i, a in enumerate(AXES)
            for kind in ('position', 'rotation')}
# ASF-style names (CMU's own skeleton: lfemur starts at the hip, ltibia at the knee, ...) come
# after the Biovision/Mixamo ones.
_ASF = dict(hip='femur', knee='tibia', ankle='foot', shoulder='humerus', elbow='radius',
            wrist='hand')
CANDIDATES: Dict[str, Tuple[str, ...]] = {
    'pelvis': ('Hips', 'pelvis'),
    **{f'{s.lower()}_{h36m}': tuple(f'{s}{c}' for c in cands) + (s[0].lower() + _ASF[h36m],)
       for s in ('Right', 'Left')
       for h36m, cands in (('hip', ('UpLeg', 'Hip')), ('knee', ('Leg', 'Knee')),
                           ('ankle', ('Foot', 'Ankle')), ('shoulder', ('Arm', 'Shoulder')),
                           ('elbow', ('ForeArm', 'Elbow')), ('wrist', ('Hand', 'Wrist')))},
    # The head joint (its End Site or a HeadTop_End joint is the head top; the midpoint is
    # neck_nose); rigs without a head joint end their neck chain in an End Site.
    'head_top': ('Head', 'head', 'Neck'),
}
HEAD_TOP_JOINTS = ('HeadTop_End',)
NOSE_MODES = ('face', 'midpoint')  # Mixamo: a joint instead of an End Site
Y_UP_TO_Z_UP = np.array([[1., 0., 0.], [0., 0., -1.], [0., 1., 0.]])  # (x, y, z) -> (x, -z, y)
RESERVED = ('fps', 'file')  # npz metadata key / np.savez_compressed's own argument
LEGS = ((1, 2, 3), (4, 5, 6))  # (hip, knee, ankle) per side in H36M order
ANKLES, HEAD_TOP = [3, 6], 10


class BVHClip(NamedTuple):
    """A parsed BVH file; End Sites are joints named ``'<parent> End Site'`` with no channels."""
    names: List[str]
    parents: List[int]  # -1 for a root; parents precede their children
    offsets: np.ndarray  # (J, 3)
    channels: List[List[Tuple[int, str]]]  # per joint: (axis index, 'position'|'rotation')
    motion: np.ndarray  # (T, C) channel values, C = total number of channels
    frame_time: float  # seconds


def _numbers(tokens: Sequence[str], path: str, what: str) -> np.ndarray:
    """Tokens -> float64 array; ValueError naming the first non-numeric token."""
    for k, tok in enumerate(tokens):
        try:
            float(tok)
        except ValueError:
            raise ValueError(f'{path}: non-numeric value {tok!r} in {what} (value {k})') from None
    return np.array(tokens, dtype=np.float64)


def parse_bvh(path: str) -> BVHClip:
    """Read a BVH file's HIERARCHY and MOTION; ValueError naming the file and the problem."""
    with open(path) as f:
        toks = f.read().split()
    if 'MOTION' not in toks:
        raise ValueError(f'{path}: no MOTION section')
    end = toks.index('MOTION')
    if 'ROOT' not in toks[:end]:
        raise ValueError(f'{path}: no ROOT joint in the HIERARCHY')
    names, parents, offsets, channels = [], [], [], []
    stack: List[int] = []
    pending, i = None, toks.index('ROOT')
    while i < end:
        tok = toks[i]
        if pending is not None and tok != '{':
            raise ValueError(f'{path}: expected "{{" after joint {names[pending]!r}, got {tok!r}')
        if tok in ('ROOT', 'JOINT', 'End'):
            # A ROOT opens a new tree; JOINT and End Site belong inside an open joint.
            if (tok == 'ROOT') == bool(stack) or i + 1 >= end or (
                    tok == 'End' and toks[i + 1] != 'Site'):
                raise ValueError(f'{path}: misplaced {tok} (token {i})')
            names.append(f'{names[stack[-1]]} End Site' if tok == 'End' else toks[i + 1])
            parents.append(stack[-1] if stack else -1)
            offsets.append(None)
            channels.append([])
            pending, i = len(names) - 1, i + 2
        elif tok == '{' and pending is not None:
            stack.append(pending)
            pending, i = None, i + 1
        elif tok == '}' and stack:
            if offsets[stack[-1]] is None:
                raise ValueError(f'{path}: joint {names[stack[-1]]!r} has no OFFSET')
            stack.pop()
            i += 1
        elif tok == 'OFFSET' and stack:
            offsets[stack[-1]] = _numbers(toks[i + 1:i + 4], path, 'OFFSET')
            i += 4
        elif tok == 'CHANNELS' and stack:
            n = int(_numbers(toks[i + 1:i + 2], path, 'CHANNELS')[0])
            for ch in toks[i + 2:i + 2 + n]:
                if ch.lower() not in CHANNELS:
                    raise ValueError(f'{path}: unknown channel {ch!r} of joint '
                                     f'{names[stack[-1]]!r} (known: {sorted(CHANNELS)})')
                channels[stack[-1]].append(CHANNELS[ch.lower()])
            i += 2 + n
        else:
            raise ValueError(f'{path}: unexpected {tok!r} in the HIERARCHY (token {i})')
    if stack:
        raise ValueError(f'{path}: unbalanced braces in the HIERARCHY')
    head = toks[end + 1:end + 6]
    if len(head) < 5 or head[0] != 'Frames:' or head[2:4] != ['Frame', 'Time:']:
        raise ValueError(f'{path}: MOTION must start with "Frames: N" and "Frame Time: S", '
                         f'got {" ".join(head)!r}')
    num_frames, frame_time = _numbers([head[1], head[4]], path, 'the MOTION header')
    if num_frames != int(num_frames) or num_frames < 1 or not frame_time > 0:
        raise ValueError(f'{path}: need Frames >= 1 (integer) and Frame Time > 0, got '
                         f'{head[1]!r} and {head[4]!r}')
    values = _numbers(toks[end + 6:], path, 'MOTION')
    num_frames, num_ch = int(num_frames), sum(len(c) for c in channels)
    if len(values) != num_frames * num_ch:
        raise ValueError(f'{path}: MOTION has {len(values)} values, expected Frames '
                         f'{num_frames} x {num_ch} channels = {num_frames * num_ch}')
    if not np.isfinite(values).all():
        raise ValueError(f'{path}: MOTION contains NaN or inf')
    return BVHClip(names, parents, np.stack(offsets), channels,
                   values.reshape(num_frames, num_ch), float(frame_time))


def axis_rotation(axis: int, degrees: np.ndarray) -> np.ndarray:
    """Right-handed rotations about x/y/z (0/1/2): ``(T,)`` degrees -> ``(T, 3, 3)``."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    u, v = ROTATION_PLANES[axis]
    rot = np.zeros(a.shape + (3, 3))
    rot[..., axis, axis] = 1.0
    rot[..., u, u], rot[..., u, v], rot[..., v, u], rot[..., v, v] = c, -s, s, c
    return rot


def forward_kinematics(clip: BVHClip, with_rotations: bool = False):
    """Global joint positions ``(T, J, 3)`` in the file's units and axes.

    With ``with_rotations`` also the global joint rotations ``(T, J, 3, 3)``.
    """
    num_frames, col = len(clip.motion), 0
    pos = np.zeros((num_frames, len(clip.names), 3))
    rot = np.zeros((num_frames, len(clip.names), 3, 3))
    for j, parent in enumerate(clip.parents):
        local_r = np.broadcast_to(np.eye(3), (num_frames, 3, 3))
        local_t = np.tile(clip.offsets[j], (num_frames, 1))
        for axis, kind in clip.channels[j]:
            if kind == 'rotation':
                local_r = local_r @ axis_rotation(axis, clip.motion[:, col])
            else:
                local_t[:, axis] = clip.motion[:, col]
            col += 1
        if parent < 0:
            pos[:, j], rot[:, j] = local_t, local_r
        else:
            pos[:, j] = pos[:, parent] + np.einsum('tij,tj->ti', rot[:, parent], local_t)
            rot[:, j] = rot[:, parent] @ local_r
    return (pos, rot) if with_rotations else pos


def rest_forward(clip: BVHClip, index: Dict[str, int], joints: Dict[str, str]) -> np.ndarray:
    """Unit anatomical forward ``lateral x up`` of the rest pose (all rotations zero).

    ``joints`` maps the Human3.6M names pelvis, left/right_hip, left/right_shoulder to the file's
    joint names. In the rest pose every global rotation is the identity, so a joint's rotation
    at time t carries this vector to where that joint's forward then points.
    """
    rest = np.zeros((len(clip.names), 3))
    for j, parent in enumerate(clip.parents):
        rest[j] = clip.offsets[j] + (rest[parent] if parent >= 0 else 0.0)
    at = {h: rest[index[n]] for h, n in joints.items()}
    lateral = at['left_hip'] - at['right_hip']
    up = (at['left_shoulder'] + at['right_shoulder']) / 2 - at['pelvis']
    forward = np.cross(lateral, up)
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError('the rest pose has no forward direction (hips or torso degenerate)')
    return forward / norm


def to_h36m(clip: BVHClip, path: str, nose: str = 'face') -> np.ndarray:
    """Map FK positions ``(T, J, 3)`` to Human3.6M-17 ``(T, 17, 3)`` (file units and axes).

    ``nose='face'`` puts neck_nose on the face: the head's centre (midway between the head joint
    and the head top) plus half that distance along the head's forward direction (the rest
    pose's anatomical forward, carried by the head joint's rotation), as Human3.6M's nose marker
    and the embedded data's nose sit in front of the head. ``'midpoint'`` keeps it at the
    centre.
    """
    if nose not in NOSE_MODES:
        raise ValueError(f'nose must be one of {NOSE_MODES}, got {nose!r}')
    pos, rot = forward_kinematics(clip, with_rotations=True)
    index = {}
    for j, name in enumerate(clip.names):
        index.setdefault(name.split(':')[-1], j)
    joints, names = {}, {}
    for h36m, cands in CANDIDATES.items():
        found = [c for c in cands if c in index]
        if not found:
            raise KeyError(f'{path}: no joint for Human3.6M {h36m!r} (tried {list(cands)}); '
                           f'joints in the file: {[n.split(":")[-1] for n in clip.names]}')
        joints[h36m] = pos[:, index[found[0]]]
        names[h36m] = found[0]
    head = joints['head_top']
    head_name = next(c for c in CANDIDATES['head_top'] if c in index)
    tops = [index[n] for n in HEAD_TOP_JOINTS + (f'{head_name} End Site',) if n in index]
    joints['head_top'] = pos[:, tops[0]] if tops else head
    centre = (head + joints['head_top']) / 2
    joints['neck_nose'] = centre
    if nose == 'face':
        try:
            forward = rest_forward(clip, index, names)
        except ValueError as err:
            raise ValueError(f'{path}: {err}') from None
        radius = np.linalg.norm(joints['head_top'] - head, axis=-1, keepdims=True) / 2
        face = np.einsum('tij,j->ti', rot[:, index[head_name]], forward)
        joints['neck_nose'] = centre + radius * face
    # Human3.6M's pelvis (and the embedded data's root) is the midpoint of the hip joints; a BVH
    # root often sits higher, at the lower back (CMU: ~10 cm above the hips), which would make
    # the torso look short, i.e. tilted in depth, to a lifter.
    joints['pelvis'] = (joints['left_hip'] + joints['right_hip']) / 2
    joints['thorax'] = (joints['left_shoulder'] + joints['right_shoulder']) / 2
    joints['spine'] = (joints['pelvis'] + joints['thorax']) / 2
    return np.stack([joints[n] for n in H36M_KEYPOINT_NAMES], axis=1)


def leg_length(pts: np.ndarray) -> float:
    """Mean thigh + shin length of ``(T, 17, 3)`` poses over frames and both legs."""
    return float(np.mean([np.linalg.norm(pts[:, h] - pts[:, k], axis=-1)
                          + np.linalg.norm(pts[:, k] - pts[:, a], axis=-1) for h, k, a in LEGS]))


def reference_stats(path: str) -> Tuple[float, float]:
    """``(leg length, floor)`` in mm of a Human3.6M-17 npz (see the module docstring)."""
    with np.load(path, allow_pickle=False) as data:
        clips = [data[str(n)] for n in data['clip_names']]
    if not clips:
        raise ValueError(f'reference {path} holds no clips')
    floor = float(np.median([c[:, ANKLES, 2].min() for c in clips]))
    return leg_length(np.concatenate(clips)), floor


def convert_clip(path: str, fps: float, reference: Tuple[float, float], rescale: bool = True,
                 keep_trajectory: bool = False, nose: str = 'face') -> Tuple[np.ndarray, dict]:
    """One BVH file -> ``(T', 17, 3)`` float32 mm, Z-up, plus what was detected.

    Args:
        path: BVH file.
        fps: Target frame rate (frames kept with a stride, see the module docstring).
        reference: ``(leg length, floor)`` in mm from :func:`reference_stats`.
        rescale: Scale to the reference leg length (else the numbers are taken as mm).
        keep_trajectory: Keep the root's horizontal motion.
        nose: Where neck_nose goes, see :func:`to_h36m`.

    Returns:
        Poses and ``dict(frames, source_fps, step, up, scale)``.
    """
    clip = parse_bvh(path)
    step = max(1, int(round((1.0 / fps) / clip.frame_time)))
    pts = to_h36m(clip._replace(motion=clip.motion[::step]), path, nose)
    up_vec = (pts[:, HEAD_TOP] - pts[:, 0]).mean(0)
    up = 'Y' if abs(up_vec[1]) > abs(up_vec[2]) else 'Z'
    if up == 'Y':
        pts = pts @ Y_UP_TO_Z_UP.T
    height = (pts[:, HEAD_TOP, 2] - pts[:, 0, 2]).mean()
    if not height > 0:
        raise ValueError(f'{path}: upside down: the head top is on average {-height:.4g} '
                         f'below the pelvis after treating the file as {up}-up')
    leg = leg_length(pts)
    if rescale and not leg > 0:
        raise ValueError(f'{path}: thigh + shin length is {leg}, cannot rescale')
    scale = reference[0] / leg if rescale else 1.0
    pts = pts * scale
    pts[..., 2] += reference[1] - pts[:, ANKLES, 2].min()
    if not keep_trajectory:
        pts[..., :2] -= pts[:, :1, :2]
    info = dict(frames=len(pts), source_fps=1.0 / clip.frame_time, step=step, up=up,
                scale=scale)
    return pts.astype(np.float32), info


def clip_name(path: str) -> str:
    """File stem without non-alphanumerics, e.g. ``12_01-walk.bvh`` -> ``1201walk``."""
    name = re.sub(r'[^0-9A-Za-z]', '', osp.splitext(osp.basename(path))[0])
    if not name or name in RESERVED:
        raise ValueError(f'{path}: clip name {name!r} is empty or reserved {RESERVED}; '
                         'rename the file')
    return name


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point: convert every BVH first, then write OUT once (nothing on error)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('out', help='output .npz')
    p.add_argument('bvh', nargs='+', help='input BVH files')
    p.add_argument('--fps', type=int, default=50, help='target frame rate (default 50)')
    p.add_argument('--keep-trajectory', action='store_true', help='keep root x/y motion')
    p.add_argument('--no-rescale', action='store_true', help='take BVH numbers as mm')
    p.add_argument('--reference', default=DEFAULT_MOCAP, help='npz giving leg length, floor')
    p.add_argument('--nose', choices=NOSE_MODES, default='face',
                   help='neck_nose on the face (default) or at the head centre')
    args = p.parse_args(argv)
    if not args.out.endswith('.npz') or not args.fps > 0:
        p.error(f'OUT must end with .npz (got {args.out!r}) and --fps be > 0 (got {args.fps})')
    reference = reference_stats(resolve_data_file(args.reference))
    clips, sources = {}, {}
    for path in args.bvh:
        name = clip_name(path)
        if name in clips:
            raise ValueError(f'{path} and {sources[name]} both give the clip name {name!r}')
        clips[name], info = convert_clip(path, args.fps, reference, not args.no_rescale,
                                         args.keep_trajectory, args.nose)
        sources[name] = path
        real_fps = info['source_fps'] / info['step']  # the stride cannot hit every --fps
        note = '' if abs(real_fps / args.fps - 1) < 0.05 else f' (NB: {real_fps:.4g} fps kept)'
        print(f'{name}: {info["frames"]} frames (source {info["source_fps"]:.4g} fps, step '
              f'{info["step"]}), {info["up"]}-up, scale {info["scale"]:.4g}{note}')
    save_npz_atomic(args.out, clips, args.fps)
    print(f'wrote {args.out}: {len(clips)} clips @ {args.fps} fps')
    return 0


if __name__ == '__main__':
    sys.exit(main())
