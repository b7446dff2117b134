"""Datasets never unpickle unrestricted, and bad data files give clear errors.

Human3.6M: a malicious ``cameras.pkl`` is refused (directly and through ``tools/test.py``) and
its payload never runs; the good fixture's cameras load exactly as MMPose loads them; object
arrays in detections and annotations are refused naming the file (and key). Mocap: files
without clips, ``clips=[]`` and object arrays are clear errors.
"""
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
from mmengine.fileio import load as mmengine_load

from helpers import load_tool
from mmunsup3d.datasets import H36MLiftingDataset, MocapProjectionDataset
from mmunsup3d.datasets.mocap_dataset import DEFAULT_MOCAP, resolve_data_file
from mmunsup3d.utils.safe_pickle import UnsafePickleError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEST = 'annotation_body3d/fps50/h36m_test.npz'
CAMS = 'annotation_body3d/cameras.pkl'


class Payload:
    """Unpickles as ``func(*args)``: what a malicious file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.fixture(scope='module')
def h36m_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('h36m_safety') / 'h36m')
    load_tool('dataset_converters', 'make_h36m_fixture.py').write_fixture(root)
    return root


def _evil_root(h36m_root, tmp_path, payload) -> str:
    """A dataset root with the fixture's annotations and a malicious cameras.pkl."""
    root = tmp_path / 'evil'
    (root / 'annotation_body3d').mkdir(parents=True)
    os.symlink(osp.join(h36m_root, 'annotation_body3d', 'fps50'),
               root / 'annotation_body3d' / 'fps50')
    with open(osp.join(h36m_root, CAMS), 'rb') as f:
        cameras = pickle.load(f)  # our own fixture: trusted
    cameras[('S9', '54138969')]['R'] = payload  # hidden among real parameters
    with open(root / CAMS, 'wb') as f:
        pickle.dump(cameras, f, protocol=4)
    return str(root)


def _payloads(marker):
    return {
        'os.system': (Payload(os.system, f'touch {marker}'),
                      f'{os.system.__module__}.{os.system.__name__}'),
        'builtins.open': (Payload(open, str(marker), 'w'), f'{open.__module__}.{open.__name__}'),
    }


def _assert_same(a, b, where='cameras'):
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _assert_same(a[key], b[key], f'{where}[{key!r}]')
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


# --------------------------------------------------------------------------- cameras.pkl
@pytest.mark.parametrize('kind', ['os.system', 'builtins.open'])
def test_malicious_cameras_pkl_refused(h36m_root, tmp_path, kind):
    marker = tmp_path / 'MARKER'
    payload, refused = _payloads(marker)[kind]
    root = _evil_root(h36m_root, tmp_path, payload)
    with pytest.raises(UnsafePickleError) as info:
        H36MLiftingDataset(ann_file=TEST, data_root=root, camera_param_file=CAMS, test_mode=True)
    assert osp.join(root, CAMS) in str(info.value)
    assert info.value.refused == f'global "{refused}"'
    assert not marker.exists()
    # MMPose's own loader, for contrast, runs it (which is why it is bypassed).
    mmengine_load(osp.join(root, CAMS))
    assert marker.exists()


def test_malicious_cameras_pkl_refused_by_tools_test(h36m_root, tmp_path):
    marker = tmp_path / 'MARKER'
    payload, refused = _payloads(marker)['os.system']
    root = _evil_root(h36m_root, tmp_path, payload)
    work_dir = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', 'configs/unsup3d_h36m.py', 'none', '--work-dir',
         str(work_dir), '--cfg-options', f'data_root={root}'],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert 'UnsafePickleError' in proc.stderr, proc.stderr[-4000:]
    assert f'{osp.join(root, CAMS)}: refusing to unpickle global "{refused}"' in proc.stderr
    assert not marker.exists()


def test_good_cameras_load_like_mmpose(h36m_root):
    from mmpose.datasets.datasets.body3d import Human36mDataset
    from mmunsup3d.datasets.h36m_dataset import _H36M_META
    ours = H36MLiftingDataset(ann_file=TEST, data_root=h36m_root, camera_param_file=CAMS,
                              test_mode=True)
    reference = mmengine_load(osp.join(h36m_root, CAMS))
    assert len(reference) == 44
    _assert_same(ours.camera_param, reference)
    mm = Human36mDataset(ann_file=TEST, data_root=h36m_root, camera_param_file=CAMS,
                         metainfo=dict(from_file=_H36M_META), lazy_init=True)
    _assert_same(ours.camera_param, mm.camera_param)
    # MMPose's per-sample lookup works on the dataset MMPose builds for us.
    from mmunsup3d.datasets.h36m_dataset import _LazyHuman36m
    lazy = _LazyHuman36m(ann_file=TEST, data_root=h36m_root, camera_param_file=CAMS,
                         metainfo=dict(from_file=_H36M_META), lazy_init=True)
    assert lazy.camera_param_file == osp.join(h36m_root, CAMS)
    _assert_same(lazy.get_camera_param('S9/x/S9_Directions_1.55011271_000001.jpg'),
                 reference[('S9', '55011271')])


def test_cameras_pkl_not_a_dict(h36m_root, tmp_path):
    cams = tmp_path / 'cams.pkl'
    cams.write_bytes(pickle.dumps([np.eye(3)]))
    with pytest.raises(TypeError, match=r'cams\.pkl must hold a dict keyed by \(subject, '
                       r'camera_id\), got list'):
        H36MLiftingDataset(ann_file=TEST, data_root=h36m_root, camera_param_file=str(cams))


# --------------------------------------------------------------------------- SafeHuman36mDataset
def _mmpose_config(*parts):
    import mmpose
    return osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs', *parts)


# Human3.6M lifting configs of MMPose's type='Human36mDataset': MMPose's own, as MMPose ships
# it, and the project's supervised PoseLifter reference.
MMPOSE_LIFT_CONFIGS = {
    'mmpose': ('body_3d_keypoint', 'image_pose_lift', 'h36m',
               'image-pose-lift_tcn_8xb64-200e_h36m.py'),
    'poselifter': None,
}
POSELIFTER_CONFIG = osp.join(REPO, 'configs', 'mmpose_poselifter',
                             'poselifter_reslifter-regression_1xb256-20e_pybullet-mocap.py')


def _safe_h36m(root, **kw):
    from mmunsup3d.datasets import SafeHuman36mDataset
    from mmunsup3d.datasets.h36m_dataset import _H36M_META
    return SafeHuman36mDataset(ann_file=TEST, data_root=root, camera_param_file=CAMS,
                               metainfo=dict(from_file=_H36M_META), **kw)


def test_safe_human36m_refuses_malicious_cameras_pkl(h36m_root, tmp_path):
    marker = tmp_path / 'MARKER'
    payload, refused = _payloads(marker)['os.system']
    root = _evil_root(h36m_root, tmp_path, payload)
    with pytest.raises(UnsafePickleError) as info:
        _safe_h36m(root)
    assert str(info.value).startswith(f'{osp.join(root, CAMS)}: refusing to unpickle global '
                                      f'"{refused}"')
    assert not marker.exists()


def test_safe_human36m_is_mmpose_human36m(h36m_root):
    """Every sample (camera parameters included) is MMPose's, built eagerly or lazily."""
    from mmpose.datasets.datasets.body3d import Human36mDataset
    from mmunsup3d.datasets.h36m_dataset import _H36M_META
    mm = Human36mDataset(ann_file=TEST, data_root=h36m_root, camera_param_file=CAMS,
                         metainfo=dict(from_file=_H36M_META))
    ours = _safe_h36m(h36m_root)
    assert isinstance(ours, Human36mDataset) and ours.camera_param_file == mm.camera_param_file
    _assert_same(ours.camera_param, mm.camera_param)
    assert len(ours) == len(mm) > 100
    for i in (0, len(mm) // 2, len(mm) - 1):
        a, b = ours.get_data_info(i), mm.get_data_info(i)
        assert 'camera_param' in a
        _assert_same({k: a[k] for k in sorted(a)}, {k: b[k] for k in sorted(b)}, f'sample {i}')
    lazy = _safe_h36m(h36m_root, lazy_init=True)
    assert not lazy._fully_initialized
    lazy.full_init()
    _assert_same(lazy.get_data_info(3)['camera_param'], mm.get_data_info(3)['camera_param'])


def test_use_safe_h36m_datasets_swaps_every_dataloader_and_wrapper():
    from mmengine.config import Config
    from mmunsup3d.datasets import use_safe_h36m_datasets
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(type='CombinedDataset', datasets=[
            dict(type='Human36mDataset'), dict(type='CocoDataset')])),
        val_dataloader=dict(dataset=dict(type='RepeatDataset', times=2,
                                         dataset=dict(type='mmpose.Human36mDataset'))),
        test_dataloader=dict(dataset=dict(type='H36MLiftingDataset'))))
    assert use_safe_h36m_datasets(cfg) == ['train_dataloader.dataset.datasets[0]',
                                           'val_dataloader.dataset.dataset']
    assert [d.type for d in cfg.train_dataloader.dataset.datasets] == ['SafeHuman36mDataset',
                                                                       'CocoDataset']
    assert cfg.val_dataloader.dataset.dataset.type == 'SafeHuman36mDataset'
    assert cfg.test_dataloader.dataset.type == 'H36MLiftingDataset'
    assert use_safe_h36m_datasets(cfg) == []  # idempotent


def test_converter_writes_the_safe_dataset_type():
    from mmengine.config import Config
    from helpers import DEMO_CONFIG
    tool = load_tool('misc', 'convert_to_mmpose_lifter.py')
    cfg = tool.build_mmpose_config(Config.fromfile(DEMO_CONFIG))
    assert cfg.dataset_type == 'SafeHuman36mDataset'
    assert cfg.test_dataloader.dataset.type == cfg.val_dataloader.dataset.type == \
        'SafeHuman36mDataset'


@pytest.mark.parametrize('config', list(MMPOSE_LIFT_CONFIGS))
def test_malicious_cameras_pkl_refused_by_tools_test_with_an_mmpose_config(config, h36m_root,
                                                                          tmp_path):
    """MMPose lifting configs (MMPose's Human36mDataset) through the project's tool."""
    marker = tmp_path / 'MARKER'
    payload, refused = _payloads(marker)['os.system']
    root = _evil_root(h36m_root, tmp_path, payload)
    parts = MMPOSE_LIFT_CONFIGS[config]
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', _mmpose_config(*parts) if parts else POSELIFTER_CONFIG,
         'none', '--work-dir', str(tmp_path / 'work'), '--cfg-options',
         f'test_dataloader.dataset.data_root={root}/',
         f'test_dataloader.dataset.camera_param_file={CAMS}', 'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False'],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert 'UnsafePickleError' in proc.stderr, proc.stderr[-4000:]
    assert f'{osp.join(root, CAMS)}: refusing to unpickle global "{refused}"' in proc.stderr
    assert 'Human36mDataset -> SafeHuman36mDataset in test_dataloader.dataset' in \
        proc.stdout + proc.stderr
    assert not marker.exists()


def test_tools_test_evaluates_an_mmpose_config_with_the_safe_dataset(h36m_root, tmp_path):
    """The swapped dataset feeds MMPose's own pipeline, model and metric (good cameras)."""
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', _mmpose_config(*MMPOSE_LIFT_CONFIGS['mmpose']),
         'none', '--work-dir', str(tmp_path / 'work'), '--cfg-options',
         f'test_dataloader.dataset.data_root={h36m_root}/',
         f'test_dataloader.dataset.camera_param_file={CAMS}', 'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False', 'test_dataloader.batch_size=512'],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    assert 'Human36mDataset -> SafeHuman36mDataset in test_dataloader.dataset' in log
    assert 'MPJPE' in proc.stdout


# --------------------------------------------------------------------------- .npy / .npz
def test_object_array_detections_refused(h36m_root, tmp_path):
    marker = tmp_path / 'MARKER'
    det = tmp_path / 'det.npy'
    np.save(det, np.array([Payload(os.system, f'touch {marker}')], dtype=object),
            allow_pickle=True)
    with pytest.raises(ValueError) as info:
        H36MLiftingDataset(ann_file=TEST, data_root=h36m_root, keypoint_2d_src='detection',
                           keypoint_2d_det_file=str(det))
    assert str(info.value).startswith(f'{det}: the array is an object array')
    assert not marker.exists()
    np.save(det, np.full((3, 17, 3), 'x'))
    with pytest.raises(ValueError, match=r'detections in .*det\.npy must be numeric, got dtype '
                       r'<U1'):
        H36MLiftingDataset(ann_file=TEST, data_root=h36m_root, keypoint_2d_src='detection',
                           keypoint_2d_det_file=str(det))


@pytest.mark.parametrize('key', ['imgname', 'part', 'S'])
def test_object_arrays_in_annotation_refused(h36m_root, tmp_path, key):
    marker = tmp_path / 'MARKER'
    with np.load(osp.join(h36m_root, TEST)) as data:
        arrays = {k: data[k][:40] for k in data.files}
    obj = np.empty(40, dtype=object)
    obj[:] = [Payload(os.system, f'touch {marker}')] * 40
    arrays[key] = obj
    ann = tmp_path / 'ann.npz'
    np.savez(ann, **arrays)
    with pytest.raises(ValueError) as info:
        H36MLiftingDataset(ann_file=str(ann), test_mode=True)
    assert str(info.value).startswith(f'{ann}: array "{key}" is an object array')
    assert not marker.exists()


def test_annotation_that_is_a_pickle_refused(tmp_path):
    marker = tmp_path / 'MARKER'
    ann = tmp_path / 'ann.npz'
    ann.write_bytes(pickle.dumps(Payload(os.system, f'touch {marker}')))
    with pytest.raises(ValueError, match=r'annotation file .*ann\.npz is not an \.npz archive'):
        H36MLiftingDataset(ann_file=str(ann))
    assert not marker.exists()


def test_annotation_string_arrays_checked(h36m_root, tmp_path):
    with np.load(osp.join(h36m_root, TEST)) as data:
        arrays = {k: data[k][:40] for k in data.files}
    ann = tmp_path / 'ann.npz'
    np.savez(ann, **dict(arrays, imgname=np.arange(40)))
    with pytest.raises(ValueError, match=r'"imgname" in .*ann\.npz must be a string array, got '
                       'dtype int64'):
        H36MLiftingDataset(ann_file=str(ann))
    np.savez(ann, **dict(arrays, part=arrays['part'].astype(str)))
    with pytest.raises(ValueError, match=r'"part" in .*ann\.npz must be numeric'):
        H36MLiftingDataset(ann_file=str(ann))


# --------------------------------------------------------------------------- mocap
def _mocap_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_mocap_without_clips(tmp_path):
    path = _mocap_npz(tmp_path / 'empty.npz', clip_names=np.array([], dtype=str))
    with pytest.raises(ValueError) as info:
        MocapProjectionDataset(data_file=path)
    assert str(info.value) == (f'MocapProjectionDataset: {path} holds no clips ("clip_names" '
                               'is empty); regenerate it with '
                               'tools/dataset_converters/pybullet_mocap.py')


def test_mocap_empty_clips_option():
    with pytest.raises(ValueError) as info:
        MocapProjectionDataset(clips=[])
    assert str(info.value).startswith('MocapProjectionDataset: clips=[] selects no clip of ')
    assert resolve_data_file(DEFAULT_MOCAP) in str(info.value)
    assert 'clips=None' in str(info.value)
    with pytest.raises(TypeError, match=r'got the string "walk" \(write clips=\["walk"\]\)'):
        MocapProjectionDataset(clips='walk')


def test_mocap_object_arrays_refused(tmp_path):
    marker = tmp_path / 'MARKER'
    evil = np.array([Payload(os.system, f'touch {marker}')], dtype=object)
    walk = np.zeros((30, 17, 3))
    path = _mocap_npz(tmp_path / 'names.npz', clip_names=evil, walk=walk)
    with pytest.raises(ValueError) as info:
        MocapProjectionDataset(data_file=path)
    assert str(info.value).startswith(f'{path}: array "clip_names" is an object array')
    path = _mocap_npz(tmp_path / 'clip.npz', clip_names=np.array(['walk']), walk=evil)
    with pytest.raises(ValueError) as info:
        MocapProjectionDataset(data_file=path)
    assert str(info.value).startswith(f'{path}: array "walk" is an object array')
    assert not marker.exists()


def test_mocap_clip_listed_but_missing(tmp_path):
    path = _mocap_npz(tmp_path / 'missing.npz', clip_names=np.array(['walk', 'run']),
                      walk=np.zeros((30, 17, 3)))
    with pytest.raises(KeyError) as info:
        MocapProjectionDataset(data_file=path)
    assert info.value.args[0] == (f'Clip(s) [\'run\'] are listed in "clip_names" of {path} but '
                                  "have no array (has ['clip_names', 'walk'])")


# --------------------------------------------------------------------------- damaged files
def _truncated(src, dst):
    data = open(src, 'rb').read()
    with open(dst, 'wb') as f:
        f.write(data[:len(data) // 2])
    return str(dst)


def test_truncated_annotation_names_the_file(h36m_root, tmp_path):
    ann = _truncated(osp.join(h36m_root, TEST), tmp_path / 'h36m_test.npz')
    with pytest.raises(ValueError) as info:
        H36MLiftingDataset(ann_file=ann, test_mode=True)
    assert str(info.value).startswith(f'H36MLiftingDataset: annotation file {ann} is not an '
                                      '.npz archive (truncated or corrupt: BadZipFile')


def test_corrupt_annotation_array_names_the_file_and_key(h36m_root, tmp_path):
    with np.load(osp.join(h36m_root, TEST)) as data:
        arrays = {k: data[k][:40] for k in data.files}
    ann = tmp_path / 'ann.npz'
    np.savez(ann, **arrays)
    raw = ann.read_bytes()
    at = raw.index(arrays['S'][20].tobytes())  # inside the data of "S.npy"
    ann.write_bytes(raw[:at] + bytes(b ^ 0xFF for b in raw[at:at + 16]) + raw[at + 16:])
    with pytest.raises(ValueError) as info:
        H36MLiftingDataset(ann_file=str(ann), test_mode=True)
    assert str(info.value).startswith(f'{ann}: cannot read array "S": the file is truncated '
                                      'or corrupt (BadZipFile: Bad CRC-32')


def test_truncated_detections_name_the_file(h36m_root, tmp_path):
    det = _truncated(osp.join(h36m_root, 'joint_2d_det_files', 'cpn_ft_h36m_dbb_test.npy'),
                     tmp_path / 'det.npy')
    with pytest.raises(ValueError) as info:
        H36MLiftingDataset(ann_file=TEST, data_root=h36m_root, keypoint_2d_src='detection',
                           keypoint_2d_det_file=det, test_mode=True)
    assert str(info.value).startswith(f'{det}: cannot read the array')


def test_truncated_mocap_names_the_file(tmp_path):
    path = _truncated(resolve_data_file(DEFAULT_MOCAP), tmp_path / 'mocap.npz')
    with pytest.raises(ValueError) as info:
        MocapProjectionDataset(data_file=path)
    assert str(info.value).startswith(f'{path} is not an .npz archive (truncated or corrupt: '
                                      'BadZipFile')
