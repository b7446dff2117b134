"""tools/dataset_converters/bvh_to_mocap.py: BVH parsing, FK, H36M mapping, axes, units, npz."""
import importlib.util
import os
import os.path as osp
import sys
from types import ModuleType
from typing import Dict, List, Optional, Sequence

import numpy as np
import pytest

from mmunsup3d.structures import H36M_KEYPOINT_NAMES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'dataset_converters', 'bvh_to_mocap.py')


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location('bvh_to_mocap_tool', TOOL)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # NamedTuple/typing look the module up by name
    spec.loader.exec_module(mod)
    return mod


bvh = _load_tool()
J = {n: i for i, n in enumerate(H36M_KEYPOINT_NAMES)}

# ---------------------------------------------------------------------------------------------
# A two-bone chain A -> B -> End Site, written out literally.
# ---------------------------------------------------------------------------------------------
CHAIN = """HIERARCHY
ROOT A
{{
  OFFSET 5 5 5
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT B
  {{
    OFFSET 1 0 0
    CHANNELS 3 {order}
    End Site
    {{
      OFFSET 0 0 1
    }}
  }}
}}
MOTION
Frames: {frames}
Frame Time: 0.02
{rows}
"""


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _chain(tmp_path, order: str, rows: Sequence[Sequence[float]], name='chain.bvh') -> str:
    body = '\n'.join(' '.join(str(v) for v in r) for r in rows)
    return _write(tmp_path, name, CHAIN.format(order=order, frames=len(rows), rows=body))


def test_fk_root_position_replaces_offset_and_z_rotation(tmp_path):
    # Frame 0: root at (1, 2, 3), nothing rotated. Frame 1: root yawed 90 deg about z, so the
    # child offset (1, 0, 0) becomes (0, 1, 0); B then rolls 90 deg about x, turning the end
    # site (0, 0, 1) into (0, -1, 0) in B's frame, i.e. (1, 0, 0) after the root's yaw.
    path = _chain(tmp_path, 'Xrotation Yrotation Zrotation',
                  [[1, 2, 3, 0, 0, 0, 0, 0, 0], [1, 2, 3, 90, 0, 0, 90, 0, 0]])
    clip = bvh.parse_bvh(path)
    assert clip.names == ['A', 'B', 'B End Site'] and clip.parents == [-1, 0, 1]
    assert clip.motion.shape == (2, 9) and clip.frame_time == 0.02
    pos = bvh.forward_kinematics(clip)
    assert pos.shape == (2, 3, 3)
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [2, 2, 3], [2, 2, 4]], atol=1e-12)
    np.testing.assert_allclose(pos[1], [[1, 2, 3], [1, 3, 3], [2, 3, 3]], atol=1e-12)


def test_fk_channel_order_matters(tmp_path):
    # Same angles X = 90, Y = 90 (Z = 0) on B, listed in two orders; end site offset (0, 0, 1).
    # XYZ: Rx @ Ry @ (0,0,1) = Rx @ (1,0,0) = (1,0,0);  ZYX: Ry @ Rx @ (0,0,1) = Ry @ (0,-1,0)
    # = (0,-1,0). B sits at (1, 0, 0) (root at the origin, unrotated).
    xyz = bvh.forward_kinematics(bvh.parse_bvh(_chain(
        tmp_path, 'Xrotation Yrotation Zrotation', [[0] * 6 + [90, 90, 0]], 'xyz.bvh')))
    zyx = bvh.forward_kinematics(bvh.parse_bvh(_chain(
        tmp_path, 'Zrotation Yrotation Xrotation', [[0] * 6 + [0, 90, 90]], 'zyx.bvh')))
    np.testing.assert_allclose(xyz[0, 2], [2, 0, 0], atol=1e-12)
    np.testing.assert_allclose(zyx[0, 2], [1, -1, 0], atol=1e-12)


@pytest.mark.parametrize('edit, message', [
    (lambda t: t.split('MOTION')[0], 'no MOTION section'),
    (lambda t: t.replace('ROOT A', 'JOINT A'), 'no ROOT joint'),
    (lambda t: t.replace('Zrotation Xrotation', 'Zrotation Wrotation'),
     "unknown channel 'Wrotation' of joint 'A'"),
    (lambda t: t.replace('Frames: 1', 'Frames: 2'), r'MOTION has 9 values, expected Frames 2 x '
                                                   r'9 channels = 18'),
    (lambda t: t.rstrip() + ' 7\n', r'MOTION has 10 values, expected Frames 1 x 9 channels = 9'),
    (lambda t: t.replace('0.02\n0 0 0', '0.02\n0 zero 0'),
     r"non-numeric value 'zero' in MOTION \(value 1\)"),
    (lambda t: t.replace('OFFSET 1 0 0', 'OFFSET 1 O 0'), "non-numeric value 'O' in OFFSET"),
    (lambda t: t.replace('Frame Time: 0.02', 'Frame Time: 0'), 'Frame Time > 0'),
])
def test_parse_errors_name_file_and_problem(tmp_path, edit, message):
    good = open(_chain(tmp_path, 'Xrotation Yrotation Zrotation', [[0] * 9])).read()
    path = _write(tmp_path, 'bad.bvh', edit(good))
    with pytest.raises(ValueError, match=message) as err:
        bvh.parse_bvh(path)
    assert path in str(err.value)


# ---------------------------------------------------------------------------------------------
# A minimal humanoid: Y-up, centimetres, facing +z (so its left is +x).
# ---------------------------------------------------------------------------------------------
# name, parent, offset, End Site offset (or None)
HUMANOID = [
    ('Hips', None, (0, 0, 0), None),
    ('RightUpLeg', 'Hips', (-10, 0, 0), None),
    ('RightLeg', 'RightUpLeg', (0, -40, 0), None),
    ('RightFoot', 'RightLeg', (0, -40, 0), (0, -5, 10)),
    ('LeftUpLeg', 'Hips', (10, 0, 0), None),
    ('LeftLeg', 'LeftUpLeg', (0, -40, 0), None),
    ('LeftFoot', 'LeftLeg', (0, -40, 0), (0, -5, 10)),
    ('Spine', 'Hips', (0, 20, 0), None),
    ('Head', 'Spine', (0, 30, 0), (0, 20, 0)),
    ('LeftArm', 'Spine', (15, 25, 0), None),
    ('LeftForeArm', 'LeftArm', (25, 0, 0), None),
    ('LeftHand', 'LeftForeArm', (25, 0, 0), (5, 0, 0)),
    ('RightArm', 'Spine', (-15, 25, 0), None),
    ('RightForeArm', 'RightArm', (-25, 0, 0), None),
    ('RightHand', 'RightForeArm', (-25, 0, 0), (-5, 0, 0)),
]
ROT = 'Zrotation Xrotation Yrotation'


def _humanoid_text(frames: List[List[float]], frame_time: float = 0.02,
                   joints=HUMANOID, to_z_up: bool = False) -> str:
    """BVH text; ``to_z_up`` writes the same body in Z-up axes ``(x, y, z) -> (x, -z, y)``."""
    conv = (lambda v: (v[0], -v[2], v[1])) if to_z_up else (lambda v: tuple(v))

    def block(name: str, depth: int) -> List[str]:
        ind = '  ' * depth
        _, parent, offset, site = next(j for j in joints if j[0] == name)
        chans = f'6 Xposition Yposition Zposition {ROT}' if parent is None else f'3 {ROT}'
        lines = [f'{ind}{"ROOT" if parent is None else "JOINT"} {name}', f'{ind}{{',
                 f'{ind}  OFFSET {" ".join(map(str, conv(offset)))}', f'{ind}  CHANNELS {chans}']
        for child in (j[0] for j in joints if j[1] == name):
            lines += block(child, depth + 1)
        if site is not None:
            lines += [f'{ind}  End Site', f'{ind}  {{',
                      f'{ind}    OFFSET {" ".join(map(str, conv(site)))}', f'{ind}  }}']
        return lines + [f'{ind}}}']

    rows = [' '.join(map(str, list(conv(f[:3])) + list(f[3:]))) for f in frames]
    return '\n'.join(['HIERARCHY'] + block(joints[0][0], 0) + [
        'MOTION', f'Frames: {len(frames)}', f'Frame Time: {frame_time}'] + rows) + '\n'


def _frame(root, rotations: Optional[Dict[str, Sequence[float]]] = None,
           joints=HUMANOID) -> List[float]:
    """One MOTION row: root position, then (Z, X, Y) degrees per joint in file order."""
    rotations = rotations or {}
    return list(root) + [a for name, *_ in joints for a in rotations.get(name, (0, 0, 0))]


# Frame 0: standing at (10, 90, 5). Frame 1: moved 10 cm along x, left knee bent 90 deg about x
# (the shin (0, -40, 0) turns into (0, 0, -40): the foot goes back, -z).
FRAMES = [_frame((10, 90, 5)), _frame((20, 90, 5), {'LeftLeg': (0, 90, 0)})]
# Hand-computed H36M joints in the file (Y-up, cm) of frame 0; frame 1 = frame 0 + (10, 0, 0)
# except the left ankle at (30, 50, -35). The nose is on the face: the head's centre (10, 150, 5)
# plus half the head joint -> head top distance (10) along the body's forward +z.
H36M_FRAME0 = {
    'pelvis': (10, 90, 5), 'right_hip': (0, 90, 5), 'right_knee': (0, 50, 5),
    'right_ankle': (0, 10, 5), 'left_hip': (20, 90, 5), 'left_knee': (20, 50, 5),
    'left_ankle': (20, 10, 5), 'spine': (10, 112.5, 5), 'thorax': (10, 135, 5),
    'neck_nose': (10, 150, 15), 'head_top': (10, 160, 5), 'left_shoulder': (25, 135, 5),
    'left_elbow': (50, 135, 5), 'left_wrist': (75, 135, 5), 'right_shoulder': (-5, 135, 5),
    'right_elbow': (-30, 135, 5), 'right_wrist': (-55, 135, 5)}


def _expected_file_coords() -> np.ndarray:
    f0 = np.array([H36M_FRAME0[n] for n in H36M_KEYPOINT_NAMES], float)
    f1 = f0 + [10, 0, 0]
    f1[J['left_ankle']] = (30, 50, -35)
    return np.stack([f0, f1])


@pytest.fixture
def reference(tmp_path) -> str:
    """Reference npz: thigh 400 + shin 400 mm, lowest ankle at z = 40 mm."""
    pose = np.zeros((2, 17, 3), np.float32)
    pose[:, [J['right_hip'], J['left_hip']], 2] = 840
    pose[:, [J['right_knee'], J['left_knee']], 2] = 440
    pose[:, [J['right_ankle'], J['left_ankle']], 2] = 40
    path = str(tmp_path / 'ref.npz')
    np.savez(path, fps=np.int32(50), joint_names=np.array(H36M_KEYPOINT_NAMES),
             clip_names=np.array(['stand']), stand=pose)
    return path


def test_h36m_mapping_and_synthesised_joints_in_file_axes(tmp_path):
    clip = bvh.parse_bvh(_write(tmp_path, 'h.bvh', _humanoid_text(FRAMES)))
    pts = bvh.to_h36m(clip, 'h.bvh')
    assert pts.shape == (2, 17, 3)
    np.testing.assert_allclose(pts, _expected_file_coords(), atol=1e-9)


def test_convert_y_up_rescale_floor_and_trajectory(tmp_path, reference):
    path = _write(tmp_path, 'h.bvh', _humanoid_text(FRAMES))
    ref = bvh.reference_stats(reference)
    assert ref == (800.0, 40.0)
    pts, info = bvh.convert_clip(path, 50, ref)
    assert pts.dtype == np.float32 and pts.shape == (2, 17, 3)
    assert info.pop('scale') == pytest.approx(10.0)  # cm -> the reference's 800 mm legs
    assert info == dict(frames=2, source_fps=50.0, step=1, up='Y')
    # (x, y, z)_file -> (x, -z, y), x 10 (cm -> the reference's leg), lowest ankle 100 -> 40,
    # root's x/y removed per frame.
    f = _expected_file_coords()
    root = f[:, :1]
    want = np.stack([f[..., 0] - root[..., 0], -(f[..., 2] - root[..., 2]), f[..., 1]], -1) * 10
    want[..., 2] -= 60
    np.testing.assert_allclose(pts, want, atol=1e-3)
    np.testing.assert_allclose(pts[0, J['head_top']], [0, 0, 1540], atol=1e-3)
    np.testing.assert_allclose(pts[0, J['thorax']], [0, 0, 1290], atol=1e-3)
    np.testing.assert_allclose(pts[0, J['spine']], [0, 0, 1065], atol=1e-3)
    np.testing.assert_allclose(pts[0, J['neck_nose']], [0, -100, 1440], atol=1e-3)  # forward
    np.testing.assert_allclose(pts[1, J['left_ankle']], [100, 400, 440], atol=1e-3)  # behind
    assert bvh.leg_length(pts) == pytest.approx(800.0)
    assert pts[..., J['left_ankle'], 2].min() == pytest.approx(40.0)


def test_keep_trajectory_and_no_rescale(tmp_path, reference):
    path = _write(tmp_path, 'h.bvh', _humanoid_text(FRAMES))
    ref = bvh.reference_stats(reference)
    kept, _ = bvh.convert_clip(path, 50, ref, keep_trajectory=True)
    np.testing.assert_allclose(kept[:, J['pelvis']], [[100, -50, 840], [200, -50, 840]],
                               atol=1e-3)
    raw, info = bvh.convert_clip(path, 50, ref, rescale=False)
    assert info['scale'] == 1.0
    # Numbers taken as mm; the lowest ankle (z 10) still goes to the floor (40).
    np.testing.assert_allclose(raw[0, J['pelvis']], [0, 0, 120], atol=1e-4)
    np.testing.assert_allclose(raw[0, J['head_top']], [0, 0, 190], atol=1e-4)


def test_z_up_input_is_kept(tmp_path, reference):
    still = [_frame((10, 90, 5)), _frame((20, 90, 5))]
    ref = bvh.reference_stats(reference)
    y_up, y_info = bvh.convert_clip(_write(tmp_path, 'y.bvh', _humanoid_text(still)), 50, ref)
    z_up, z_info = bvh.convert_clip(
        _write(tmp_path, 'z.bvh', _humanoid_text(still, to_z_up=True)), 50, ref)
    assert (y_info['up'], z_info['up']) == ('Y', 'Z')
    np.testing.assert_allclose(z_up, y_up, atol=1e-3)
    np.testing.assert_allclose(z_up[0, J['head_top']], [0, 0, 1540], atol=1e-3)


@pytest.mark.parametrize('frame_time, step, kept', [(0.01, 2, [0, 2, 4]), (0.02, 1, range(5)),
                                                    (1 / 120, 2, [0, 2, 4]), (0.05, 1, range(5))])
def test_resample_by_stride(tmp_path, reference, frame_time, step, kept):
    frames = [_frame((k, 90, 5)) for k in range(5)]
    path = _write(tmp_path, 'h.bvh', _humanoid_text(frames, frame_time))
    pts, info = bvh.convert_clip(path, 50, bvh.reference_stats(reference), keep_trajectory=True)
    assert info['step'] == step and info['frames'] == len(kept)
    np.testing.assert_allclose(pts[:, J['pelvis'], 0], np.array(list(kept)) * 10.0, atol=1e-3)


def test_alternative_names_and_arm_beats_clavicle(tmp_path, reference):
    # Rename to the RightHip/RightKnee/... convention and insert a 'LeftShoulder' clavicle
    # (5, 25, 0) above LeftArm (10, 0, 0): the shoulder is LeftArm, at the same place as before.
    rename = {'RightUpLeg': 'RightHip', 'RightLeg': 'RightKnee', 'RightFoot': 'RightAnkle',
              'LeftUpLeg': 'LeftHip', 'LeftLeg': 'LeftKnee', 'LeftFoot': 'LeftAnkle',
              'RightForeArm': 'RightElbow', 'RightHand': 'RightWrist'}
    joints = [(rename.get(n, n), rename.get(p, p), o, s) for n, p, o, s in HUMANOID]
    k = next(i for i, j in enumerate(joints) if j[0] == 'LeftArm')
    joints[k] = ('LeftArm', 'LeftShoulder', (10, 0, 0), None)
    joints.insert(k, ('LeftShoulder', 'Spine', (5, 25, 0), None))
    text = _humanoid_text([_frame((10, 90, 5), joints=joints)], joints=joints)
    pts = bvh.to_h36m(bvh.parse_bvh(_write(tmp_path, 'alt.bvh', text)), 'alt.bvh')
    np.testing.assert_allclose(pts, _expected_file_coords()[:1], atol=1e-9)


def test_head_without_end_site_is_head_top(tmp_path):
    joints = [j if j[0] != 'Head' else ('Head', 'Spine', (0, 30, 0), None) for j in HUMANOID]
    text = _humanoid_text([_frame((10, 90, 5), joints=joints)], joints=joints)
    pts = bvh.to_h36m(bvh.parse_bvh(_write(tmp_path, 'h.bvh', text)), 'h.bvh')
    np.testing.assert_allclose(pts[0, [J['head_top'], J['neck_nose']]], [[10, 140, 5]] * 2)


ASF_NAMES = {'Hips': 'pelvis', 'RightUpLeg': 'rfemur', 'RightLeg': 'rtibia', 'RightFoot': 'rfoot',
             'LeftUpLeg': 'lfemur', 'LeftLeg': 'ltibia', 'LeftFoot': 'lfoot', 'Spine': 'thorax',
             'Head': 'head', 'LeftArm': 'lhumerus', 'LeftForeArm': 'lradius',
             'LeftHand': 'lhand', 'RightArm': 'rhumerus', 'RightForeArm': 'rradius',
             'RightHand': 'rhand'}


def test_asf_style_names_map_like_biovision_ones(tmp_path):
    # CMU's ASF skeleton exported to BVH: the same body under lfemur/ltibia/... names.
    joints = [(ASF_NAMES[n], p and ASF_NAMES[p], o, s) for n, p, o, s in HUMANOID]
    text = _humanoid_text([_frame((10, 90, 5), joints=joints)], joints=joints)
    pts = bvh.to_h36m(bvh.parse_bvh(_write(tmp_path, 'asf.bvh', text)), 'asf.bvh')
    np.testing.assert_allclose(pts, _expected_file_coords()[:1], atol=1e-9)


def test_mixamo_head_top_joint_and_neck_fallback(tmp_path):
    # Mixamo: the head top is a joint 'HeadTop_End' (here 20 cm above the head, like the
    # End Site of the standard fixture), names carry a 'mixamorig:' namespace.
    joints = [j if j[0] != 'Head' else ('Head', 'Spine', (0, 30, 0), None) for j in HUMANOID]
    joints.append(('HeadTop_End', 'Head', (0, 20, 0), (0, 1, 0)))
    joints = [('mixamorig:' + n, p and 'mixamorig:' + p, o, s) for n, p, o, s in joints]
    text = _humanoid_text([_frame((10, 90, 5), joints=joints)], joints=joints)
    pts = bvh.to_h36m(bvh.parse_bvh(_write(tmp_path, 'mx.bvh', text)), 'mx.bvh')
    np.testing.assert_allclose(pts, _expected_file_coords()[:1], atol=1e-9)
    # No head joint: the neck chain's End Site is the head top.
    joints = [j if j[0] != 'Head' else ('Neck', 'Spine', (0, 30, 0), (0, 20, 0)) for j in HUMANOID]
    text = _humanoid_text([_frame((10, 90, 5), joints=joints)], joints=joints)
    pts = bvh.to_h36m(bvh.parse_bvh(_write(tmp_path, 'neck.bvh', text)), 'neck.bvh')
    np.testing.assert_allclose(pts, _expected_file_coords()[:1], atol=1e-9)


def test_missing_joint_is_a_key_error(tmp_path, reference):
    joints = [(n.replace('LeftForeArm', 'LeftLowerArm'), (p or '').replace(
        'LeftForeArm', 'LeftLowerArm') or None, o, s) for n, p, o, s in HUMANOID]
    path = _write(tmp_path, 'noelbow.bvh', _humanoid_text(
        [_frame((10, 90, 5), joints=joints)], joints=joints))
    with pytest.raises(KeyError, match=r"noelbow.bvh: no joint for Human3.6M 'left_elbow' "
                                       r"\(tried \['LeftForeArm', 'LeftElbow', 'lradius'\]\)"):
        bvh.convert_clip(path, 50, bvh.reference_stats(reference))


def test_upside_down_is_rejected(tmp_path, reference):
    # Root rolled 180 deg about z: the head hangs 70 cm below the hips.
    flip = _humanoid_text([_frame((10, 90, 5), {'Hips': (180, 0, 0)})])
    path = _write(tmp_path, 'flip.bvh', flip)
    with pytest.raises(ValueError, match=r'flip.bvh: upside down: the head top is on average 70 '
                                         r'below the pelvis after treating the file as Y-up'):
        bvh.convert_clip(path, 50, bvh.reference_stats(reference))


def test_default_reference_is_the_embedded_mocap():
    from mmunsup3d.datasets.mocap_dataset import DEFAULT_MOCAP, resolve_data_file
    leg, floor = bvh.reference_stats(resolve_data_file(DEFAULT_MOCAP))
    # One DeepMimic skeleton: thigh + shin 831.4 mm; median lowest ankle 40.1 mm (clip 'spinkick').
    assert leg == pytest.approx(831.416, abs=0.01) and floor == pytest.approx(40.07, abs=0.01)


def test_clip_names():
    assert bvh.clip_name('/x/12_01-walk.v2.bvh') == '1201walkv2'
    with pytest.raises(ValueError, match=r"clip name 'fps' is empty or reserved"):
        bvh.clip_name('/x/f_p_s.bvh')
    with pytest.raises(ValueError, match=r"clip name '' is empty"):
        bvh.clip_name('/x/__.bvh')


# ---------------------------------------------------------------------------------------------
# CLI: the npz, the dataset reading it, and nothing left behind on errors.
# ---------------------------------------------------------------------------------------------
def _inputs(tmp_path, **texts: str) -> List[str]:
    src = tmp_path / 'src'
    src.mkdir(exist_ok=True)
    return [_write(src, f'{name}.bvh', text) for name, text in texts.items()]


def test_cli_writes_npz_the_dataset_reads(tmp_path, reference, capsys):
    four = FRAMES + [_frame((30, 90, 5)), _frame((40, 90, 5))]
    paths = _inputs(tmp_path, walk_fast=_humanoid_text(four), jog=_humanoid_text(four))
    out = tmp_path / 'out' / 'bvh.npz'
    assert bvh.main([str(out), *paths, '--reference', reference]) == 0
    assert 'walkfast: 4 frames (source 50 fps, step 1), Y-up, scale 10' in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as data:
        assert int(data['fps']) == 50
        assert list(data['joint_names']) == list(H36M_KEYPOINT_NAMES)
        assert list(data['clip_names']) == ['walkfast', 'jog']
        assert data['jog'].dtype == np.float32 and data['jog'].shape == (4, 17, 3)
    assert oct(os.stat(out).st_mode & 0o777) == '0o644'
    assert sorted(os.listdir(out.parent)) == ['bvh.npz']
    from mmunsup3d.datasets import MocapProjectionDataset
    ds = MocapProjectionDataset(data_file=str(out), split='test', test_fraction=0.5,
                                gap_frames=0)
    # 2 clips x 2 test cameras x 2 test frames.
    assert ds.arrays['keypoints_2d'].shape == (8, 17, 2)
    assert np.isfinite(ds.arrays['keypoints_2d']).all()


def _bad_inputs(tmp_path, kind: str) -> List[str]:
    good = _humanoid_text(FRAMES)
    if kind == 'truncated':
        return _inputs(tmp_path, a=good, b=good.rsplit(' ', 1)[0] + '\n')
    if kind == 'upside_down':
        flip = _humanoid_text([_frame((0, 90, 0), {'Hips': (180, 0, 0)})])
        return _inputs(tmp_path, a=good, b=flip)
    if kind == 'missing_joint':
        return _inputs(tmp_path, a=good, b=good.replace('JOINT Head', 'JOINT Skull'))
    other = tmp_path / 'other'
    other.mkdir()
    return _inputs(tmp_path, a_b=good) + [_write(other, 'ab.bvh', good)]


@pytest.mark.parametrize('kind, error, message', [
    ('truncated', ValueError, r'b.bvh: MOTION has 95 values, expected Frames 2 x 48 channels = 96'),
    ('upside_down', ValueError, 'b.bvh: upside down'),
    ('missing_joint', KeyError,
     r"b.bvh: no joint for Human3.6M 'head_top' \(tried \['Head', 'head', 'Neck'\]\)"),
    ('duplicate', ValueError, r"ab.bvh and .*a_b.bvh both give the clip name 'ab'"),
])
@pytest.mark.parametrize('existing', [False, True])
def test_cli_errors_leave_nothing_behind(tmp_path, reference, kind, error, message, existing):
    paths = _bad_inputs(tmp_path, kind)
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    out = out_dir / 'bvh.npz'
    if existing:
        out.write_bytes(b'previous result')
    with pytest.raises(error, match=message):
        bvh.main([str(out), *paths, '--reference', reference])
    assert sorted(os.listdir(out_dir)) == (['bvh.npz'] if existing else [])
    if existing:
        assert out.read_bytes() == b'previous result'


def test_failed_write_removes_temp_and_keeps_old_out(tmp_path, reference, monkeypatch):
    paths = _inputs(tmp_path, a=_humanoid_text(FRAMES))
    out = tmp_path / 'bvh.npz'
    out.write_bytes(b'previous result')

    def half_write(f, **arrays):
        f.write(b'PK partial')
        raise OSError('disk full')

    monkeypatch.setattr(bvh.np, 'savez_compressed', half_write)
    with pytest.raises(OSError, match='disk full'):
        bvh.main([str(out), *paths, '--reference', reference])
    assert sorted(os.listdir(tmp_path)) == ['bvh.npz', 'ref.npz', 'src']
    assert out.read_bytes() == b'previous result'


def test_cli_rejects_out_that_is_not_npz(tmp_path, reference, capsys):
    paths = _inputs(tmp_path, a=_humanoid_text(FRAMES))
    with pytest.raises(SystemExit):
        bvh.main([paths[0], paths[0], '--reference', reference])
    assert "OUT must end with .npz (got '" in capsys.readouterr().err
    assert open(paths[0]).read() == _humanoid_text(FRAMES)


def test_cli_notes_a_frame_rate_the_stride_cannot_reach(tmp_path, reference, capsys):
    # 30 fps source, --fps 25: round(0.04 / 0.0333) = 1, so every frame is kept at 30 fps.
    paths = _inputs(tmp_path, a=_humanoid_text(FRAMES, frame_time=1 / 30))
    assert bvh.main([str(tmp_path / 'o.npz'), *paths, '--fps', '25', '--reference', reference]) == 0
    assert 'a: 2 frames (source 30 fps, step 1), Y-up, scale 10 (NB: 30 fps kept)' \
        in capsys.readouterr().out


def test_nose_turns_with_the_head_and_midpoint_mode(tmp_path):
    # Head yawed +90 deg about y (ROT lists Z, X, Y): its forward +z becomes +x, so the nose moves
    # from (10, 150, 15) to (10 + 10, 150, 5); the head top (straight up) stays.
    text = _humanoid_text([_frame((10, 90, 5), {'Head': (0, 0, 90)})])
    clip = bvh.parse_bvh(_write(tmp_path, 'yaw.bvh', text))
    pts = bvh.to_h36m(clip, 'yaw.bvh')
    np.testing.assert_allclose(pts[0, J['neck_nose']], [20, 150, 5], atol=1e-9)
    np.testing.assert_allclose(pts[0, J['head_top']], [10, 160, 5], atol=1e-9)
    mid = bvh.to_h36m(clip, 'yaw.bvh', nose='midpoint')
    np.testing.assert_allclose(mid[0, J['neck_nose']], [10, 150, 5], atol=1e-9)
    with pytest.raises(ValueError, match=r"nose must be one of \('face', 'midpoint'\), got 'x'"):
        bvh.to_h36m(clip, 'yaw.bvh', nose='x')


def test_pelvis_is_the_midpoint_of_the_hips_not_the_root(tmp_path):
    # A CMU-like rig: the root 10 cm above the hip joints (hips offset (+-10, -10, 0)).
    joints = [(n, p, (o[0], -10, o[2]) if n in ('RightUpLeg', 'LeftUpLeg') else o, s)
              for n, p, o, s in HUMANOID]
    text = _humanoid_text([_frame((10, 90, 5), joints=joints)], joints=joints)
    pts = bvh.to_h36m(bvh.parse_bvh(_write(tmp_path, 'low.bvh', text)), 'low.bvh')
    np.testing.assert_allclose(pts[0, J['pelvis']], [10, 80, 5], atol=1e-9)
    np.testing.assert_allclose(pts[0, J['spine']], [10, (80 + 135) / 2, 5], atol=1e-9)
