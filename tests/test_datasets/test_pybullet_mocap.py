"""Tests for ``tools/dataset_converters/pybullet_mocap.py`` and its committed output.

Runs with numpy only; the regeneration test is skipped when ``pybullet`` is not installed.
"""
import importlib.util
import json
import os.path as osp
import sys
from types import ModuleType
from typing import Dict

import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTER = osp.join(REPO, 'tools', 'dataset_converters', 'pybullet_mocap.py')
NPZ = osp.join(REPO, 'data', 'pybullet_mocap', 'h36m17_mocap.npz')

# H36M-17 parent -> child bones.
BONES = {
    'r_pelvis_hip': (0, 1), 'r_thigh': (1, 2), 'r_shin': (2, 3),
    'l_pelvis_hip': (0, 4), 'l_thigh': (4, 5), 'l_shin': (5, 6),
    'pelvis_spine': (0, 7), 'spine_thorax': (7, 8), 'thorax_nose': (8, 9),
    'nose_head': (9, 10), 'thorax_head': (8, 10),
    'l_thorax_shoulder': (8, 11), 'l_upper_arm': (11, 12), 'l_forearm': (12, 13),
    'r_thorax_shoulder': (8, 14), 'r_upper_arm': (14, 15), 'r_forearm': (15, 16),
}


def _load_converter() -> ModuleType:
    spec = importlib.util.spec_from_file_location('pybullet_mocap_converter', CONVERTER)
    mod = importlib.util.module_from_spec(spec)
    # dataclasses resolve annotations through sys.modules, so register before exec.
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


pm = _load_converter()


def _bone_lengths(x: np.ndarray) -> Dict[str, np.ndarray]:
    return {k: np.linalg.norm(x[:, a] - x[:, b], axis=-1) for k, (a, b) in BONES.items()}


def _random_quats(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4))


# --------------------------------------------------------------------------------------------
# Synthetic URDF with the DeepMimic joint names (the real one ships only with pybullet).
# --------------------------------------------------------------------------------------------
SYNTH_JOINTS = [
    # name, type, parent, offset (unscaled)
    ('root', 'fixed', 'base', (0, 0, 0)),
    ('chest', 'spherical', 'root', (0, 1.0, 0)),
    ('neck', 'spherical', 'chest', (0, 0.8, 0)),
    ('right_hip', 'spherical', 'root', (0, 0, 0.3)),
    ('right_knee', 'revolute', 'right_hip', (0, -1.6, 0)),
    ('right_ankle', 'spherical', 'right_knee', (0, -1.5, 0)),
    ('right_shoulder', 'spherical', 'chest', (-0.1, 0.9, 0.7)),
    ('right_elbow', 'revolute', 'right_shoulder', (0, -1.1, 0)),
    ('right_wrist', 'fixed', 'right_elbow', (0, -1.0, 0)),
    ('left_hip', 'spherical', 'root', (0, 0, -0.3)),
    ('left_knee', 'revolute', 'left_hip', (0, -1.6, 0)),
    ('left_ankle', 'spherical', 'left_knee', (0, -1.5, 0)),
    ('left_shoulder', 'spherical', 'chest', (-0.1, 0.9, -0.7)),
    ('left_elbow', 'revolute', 'left_shoulder', (0, -1.1, 0)),
    ('left_wrist', 'fixed', 'left_elbow', (0, -1.0, 0)),
]
HEAD_CENTER, HEAD_RADIUS = (0, 0.6, 0), 0.4


def _write_urdf(path: str, trailing_nul: bool = True) -> None:
    links = ['base'] + [j[0] for j in SYNTH_JOINTS]
    parts = ['<robot name="synth">']
    for link in links:
        if link == 'neck':
            parts.append(
                f'<link name="neck"><collision><origin rpy="0 0 0" '
                f'xyz="{" ".join(map(str, HEAD_CENTER))}"/><geometry>'
                f'<sphere radius="{HEAD_RADIUS}"/></geometry></collision></link>')
        else:
            parts.append(f'<link name="{link}"/>')
    for name, jtype, parent, off in SYNTH_JOINTS:
        axis = '<axis xyz="0 0 1"/>' if jtype == 'revolute' else ''
        parts.append(f'<joint name="{name}" type="{jtype}"><parent link="{parent}"/>'
                     f'<child link="{name}"/><origin rpy="0 0 0" '
                     f'xyz="{" ".join(map(str, off))}"/>{axis}</joint>')
    parts.append('</robot>\r\n')
    data = '\n'.join(parts).encode()
    with open(path, 'wb') as f:
        # Mirror pybullet's shipped humanoid.urdf, which ends with a NUL byte.
        f.write(data + (b'\x00' if trailing_nul else b''))


@pytest.fixture()
def skeleton(tmp_path):
    path = str(tmp_path / 'humanoid.urdf')
    _write_urdf(path)
    return pm.load_skeleton(path, scale=0.25)


def _write_clip(path: str, frames) -> None:
    with open(path, 'w') as f:
        json.dump({'Loop': 'none', 'Frames': frames}, f)


def _frame(duration: float, root_x: float = 0.0, knee: float = 0.0) -> list:
    fr = [duration, root_x, 0.85, 0.0]
    for name, k in pm.MOTION_CHANNELS[1:]:
        if k == 4:
            fr += [1.0, 0.0, 0.0, 0.0]
        else:
            fr.append(knee if 'knee' in name else 0.0)
    assert len(fr) == pm.FRAME_LEN
    return fr


# --------------------------------------------------------------------------------------------
# Unit tests of the pure functions
# --------------------------------------------------------------------------------------------
def test_quat_to_matrix_orthonormal():
    rot = pm.quat_to_matrix(_random_quats(200) * 3.0)  # unnormalised on purpose
    eye = np.broadcast_to(np.eye(3), rot.shape)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), eye, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)


def test_quat_to_matrix_matches_axis_angle():
    axis = np.array([0.3, -0.5, 0.8])
    axis /= np.linalg.norm(axis)
    angles = np.linspace(-3, 3, 7)
    q = np.concatenate([np.cos(angles / 2)[:, None], np.sin(angles / 2)[:, None] * axis], 1)
    np.testing.assert_allclose(
        pm.quat_to_matrix(q), pm.axis_angle_to_matrix(axis, angles), atol=1e-12)
    # (w, x, y, z) order: 90 deg about +z maps +x to +y.
    q90 = [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]
    np.testing.assert_allclose(pm.quat_to_matrix(q90) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_slerp_endpoints_and_midpoint():
    q0 = pm.quat_normalize(_random_quats(50, 1))
    q1 = pm.quat_normalize(_random_quats(50, 2))
    np.testing.assert_allclose(pm.slerp(q0, q1, np.zeros(50)), q0, atol=1e-12)
    end = pm.slerp(q0, q1, np.ones(50))
    # Equal up to sign (shortest path may flip q1).
    np.testing.assert_allclose(np.abs(np.sum(end * q1, axis=1)), 1.0, atol=1e-12)
    # Midpoint is equidistant in angle and lies on the short arc.
    mid = pm.slerp(q0, q1, np.full(50, 0.5))
    d0 = np.abs(np.sum(mid * q0, axis=1))
    d1 = np.abs(np.sum(mid * q1, axis=1))
    np.testing.assert_allclose(d0, d1, atol=1e-12)
    assert np.all(d0 >= np.abs(np.sum(q0 * q1, axis=1)) - 1e-12)
    # Same rotation with opposite sign: no motion along the way.
    same = pm.slerp(q0, -q0, np.full(50, 0.3))
    np.testing.assert_allclose(np.abs(np.sum(same * q0, axis=1)), 1.0, atol=1e-12)


def test_slerp_constant_angular_speed():
    angle = 1.2
    q0 = np.array([1.0, 0, 0, 0])
    q1 = np.array([np.cos(angle / 2), np.sin(angle / 2), 0, 0])
    t = np.linspace(0, 1, 11)
    out = pm.slerp(np.tile(q0, (11, 1)), np.tile(q1, (11, 1)), t)
    np.testing.assert_allclose(2 * np.arccos(np.clip(out[:, 0], -1, 1)), angle * t, atol=1e-9)


def test_fk_zero_pose_gives_urdf_offsets(skeleton):
    joint_pos, link_rot = pm.forward_kinematics(skeleton, pm.rest_pose(2))
    parent_of = {name: parent for name, _, parent, _ in SYNTH_JOINTS}
    offsets = {name: np.array(off) * 0.25 for name, _, _, off in SYNTH_JOINTS}
    for name in parent_of:
        parent = parent_of[name]
        base = np.zeros(3) if parent == 'base' else joint_pos[parent][0]
        np.testing.assert_allclose(joint_pos[name][0], base + offsets[name], atol=1e-12)
        np.testing.assert_allclose(link_rot[name][1], np.eye(3), atol=1e-12)
    pts = pm.h36m_points(skeleton, pm.rest_pose(1))[0]
    head_c = joint_pos['neck'][0] + np.array(HEAD_CENTER) * 0.25
    np.testing.assert_allclose(pts[9], head_c + [HEAD_RADIUS * 0.25, 0, 0], atol=1e-12)
    np.testing.assert_allclose(pts[10], head_c + [0, HEAD_RADIUS * 0.25, 0], atol=1e-12)
    np.testing.assert_allclose(pts[7], joint_pos['chest'][0])
    np.testing.assert_allclose(pts[16], joint_pos['right_wrist'][0])


def test_fk_root_transform_and_knee(skeleton):
    pose = pm.rest_pose(1)
    pose['root_pos'] = np.array([[1.0, 2.0, 3.0]])
    yaw = np.pi / 2  # about +y (DeepMimic up)
    pose['root_rot'] = np.array([[np.cos(yaw / 2), 0, np.sin(yaw / 2), 0]])
    pose['right_knee'] = np.array([-np.pi / 2])
    jp, _ = pm.forward_kinematics(skeleton, pose)
    np.testing.assert_allclose(jp['root'][0], [1, 2, 3])
    # Yaw +90 deg about y maps local +z (right hip side) to +x.
    np.testing.assert_allclose(jp['right_hip'][0] - jp['root'][0], [0.075, 0, 0], atol=1e-12)
    # Knee -90 deg about z swings the shin from -y to -x (backwards) in the thigh frame,
    # which the root yaw maps to +z.
    shin = jp['right_ankle'][0] - jp['right_knee'][0]
    np.testing.assert_allclose(shin, [0, 0, 1.5 * 0.25], atol=1e-12)


def test_axis_conversion_right_handed():
    np.testing.assert_allclose(np.linalg.det(pm.YUP_TO_ZUP), 1.0)
    # Y-up "up" becomes +z, metres become millimetres.
    np.testing.assert_allclose(pm.yup_m_to_zup_mm([0.0, 1.0, 0.0]), [0, 0, 1000])
    np.testing.assert_allclose(pm.yup_m_to_zup_mm([0.0, 0.0, 1.0]), [0, -1000, 0])


def test_resample_uniform_times(tmp_path):
    path = str(tmp_path / 'humanoid3d_test.txt')
    # Two 0.1 s segments then the (unused) last duration; knee goes 0 -> -1 -> -1.
    _write_clip(path, [_frame(0.1, 0.0, 0.0), _frame(0.1, 1.0, -1.0), _frame(0.0, 1.0, -1.0)])
    motion = pm.resample_motion(pm.load_motion(path), fps=50)
    np.testing.assert_allclose(motion['times'], np.arange(11) / 50)
    np.testing.assert_allclose(motion['root_pos'][:6, 0], np.linspace(0, 1, 6), atol=1e-12)
    np.testing.assert_allclose(motion['right_knee'][5:], -1.0)
    np.testing.assert_allclose(np.linalg.norm(motion['chest'], axis=1), 1.0)


def test_convert_clip_and_atomic_save(tmp_path, skeleton):
    path = str(tmp_path / 'humanoid3d_test.txt')
    _write_clip(path, [_frame(0.1), _frame(0.1, 1.0), _frame(0.0, 2.0)])
    pts = pm.convert_clip(path, skeleton, fps=50)
    assert pts.shape == (11, 17, 3) and pts.dtype == np.float32
    out = str(tmp_path / 'sub' / 'o.npz')
    pm.save_npz_atomic(out, {'test': pts}, 50)
    with np.load(out) as d:
        assert int(d['fps']) == 50
        assert list(d['clip_names']) == ['test']
        np.testing.assert_array_equal(d['test'], pts)
    assert sorted(p.name for p in (tmp_path / 'sub').iterdir()) == ['o.npz']


def test_bad_inputs_name_the_file(tmp_path):
    bad_len = str(tmp_path / 'humanoid3d_short.txt')
    _write_clip(bad_len, [_frame(0.1), _frame(0.0)[:-1]])
    with pytest.raises(ValueError, match='humanoid3d_short.txt.*frame 1 has length 43'):
        pm.load_motion(bad_len)
    nan = str(tmp_path / 'humanoid3d_nan.txt')
    fr = _frame(0.0)
    fr[5] = float('nan')
    _write_clip(nan, [_frame(0.1), fr])
    with pytest.raises(ValueError, match='humanoid3d_nan.txt.*non-finite'):
        pm.load_motion(nan)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        pm.locate_pybullet_data(str(tmp_path / 'nope'))
    with pytest.raises(FileNotFoundError, match='humanoid.urdf'):
        pm.locate_pybullet_data(str(tmp_path))


# --------------------------------------------------------------------------------------------
# Committed data
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def mocap():
    assert osp.getsize(NPZ) < 1024 * 1024
    with np.load(NPZ) as d:
        return {k: d[k] for k in d.files}


def test_npz_layout(mocap):
    assert int(mocap['fps']) == 50
    assert tuple(mocap['joint_names']) == pm.H36M_JOINT_NAMES
    names = list(mocap['clip_names'])
    assert 'walk' in names and len(names) == len(set(names))
    assert set(mocap) == set(names) | {'fps', 'joint_names', 'clip_names'}
    for name in names:
        x = mocap[name]
        assert x.dtype == np.float32
        assert x.ndim == 3 and x.shape[1:] == (17, 3) and x.shape[0] >= 25, name
        assert np.all(np.isfinite(x)), name


def test_bone_lengths_rigid_and_human_sized(mocap):
    ranges = {  # millimetres
        'r_thigh': (300, 550), 'l_thigh': (300, 550), 'r_shin': (300, 550),
        'l_shin': (300, 550), 'r_upper_arm': (200, 400), 'l_upper_arm': (200, 400),
        'r_forearm': (180, 350), 'l_forearm': (180, 350), 'r_pelvis_hip': (50, 200),
        'l_pelvis_hip': (50, 200),
    }
    for name in mocap['clip_names']:
        lengths = _bone_lengths(mocap[name].astype(np.float64))
        for bone, v in lengths.items():
            assert v.std() / v.mean() < 1e-3, (name, bone)
        for bone, (lo, hi) in ranges.items():
            assert lo < lengths[bone].mean() < hi, (name, bone, lengths[bone].mean())
        # Left/right symmetric skeleton.
        for side in ('pelvis_hip', 'thigh', 'shin', 'thorax_shoulder', 'upper_arm', 'forearm'):
            np.testing.assert_allclose(
                lengths['r_' + side].mean(), lengths['l_' + side].mean(), rtol=1e-4)
        # Rest height ankle -> head top: every segment on that chain is vertical at rest
        # (hip offsets are purely lateral), so it is the sum of these bone lengths.
        height = sum(lengths[b].mean()
                     for b in ('r_shin', 'r_thigh', 'pelvis_spine', 'spine_thorax',
                               'thorax_head'))
        assert 1400 < height < 2000, (name, height)


def test_walk_orientation(mocap):
    walk = mocap['walk'].astype(np.float64)
    up = np.array([0.0, 0.0, 1.0])
    forward = walk[-1, 0] - walk[0, 0]
    forward[2] = 0.0
    assert np.linalg.norm(forward) > 500  # the walk clip travels > 0.5 m
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    # Right joints on the person's right in every frame.
    assert np.all((walk[:, 1] - walk[:, 4]) @ right > 0)
    assert np.all((walk[:, 14] - walk[:, 11]) @ right > 0)
    # Chest facing (from hips and up) agrees with the direction of travel.
    chest_fwd = np.cross(up, walk[:, 1] - walk[:, 4])
    assert np.all(chest_fwd @ forward > 0)
    # Nose in front of the thorax.
    assert np.mean((walk[:, 9] - walk[:, 8]) @ forward > 0) > 0.9
    # Vertical order: head top > pelvis > ankles in most frames.
    z = walk[..., 2]
    assert np.mean(z[:, 10] > z[:, 0]) > 0.9
    assert np.mean((z[:, 0] > z[:, 3]) & (z[:, 0] > z[:, 6])) > 0.9
    # Feet near the floor (z = 0) while walking.
    assert -50 < z[:, [3, 6]].min() < 150


def test_regenerate_matches_committed(mocap, tmp_path):
    pytest.importorskip('pybullet')
    data_dir = pm.locate_pybullet_data(None)
    clips = pm.convert_all(data_dir, fps=int(mocap['fps']))
    assert list(clips) == list(mocap['clip_names'])
    for name, x in clips.items():
        assert x.shape == mocap[name].shape, name
        np.testing.assert_allclose(x, mocap[name], atol=1e-3, err_msg=name)
    out = str(tmp_path / 'regen.npz')
    assert pm.main(['--out', out]) == 0
    with np.load(out) as d:
        for name in mocap['clip_names']:
            np.testing.assert_allclose(d[name], mocap[name], atol=1e-3, err_msg=name)
