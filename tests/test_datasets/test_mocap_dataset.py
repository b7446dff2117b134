import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mmpose.registry import DATASETS
from mmunsup3d.datasets import (MocapProjectionDataset, look_at_camera, sample_h36m_like_camera,
                                unsup3d_collate, world_to_camera)


@pytest.fixture(scope='module')
def train_set():
    return MocapProjectionDataset(split='train')


@pytest.fixture(scope='module')
def test_set():
    return MocapProjectionDataset(split='test')


def test_look_at_camera_axes():
    rot = look_at_camera(np.array([5.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0]))
    assert np.allclose(rot @ rot.T, np.eye(3)) and np.isclose(np.linalg.det(rot), 1.0)
    cam = world_to_camera(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [0.0, 1.0, 1.0]]), rot,
                          np.array([5.0, 0.0, 1.0]))
    assert np.allclose(cam[0], [0, 0, 5])           # target on the optical axis
    assert cam[1, 1] < 0                            # world up is image up (y down)
    assert cam[2, 0] > 0                            # looking along -x, world +y is on the right


def test_h36m_like_camera_ranges():
    rng = np.random.default_rng(0)
    for _ in range(50):
        cam = sample_h36m_like_camera(rng, np.zeros(3))
        dist = np.linalg.norm(cam['T'][:2])
        assert 4.4 <= dist <= 6.1 and 1.2 <= cam['T'][2] <= 1.9
        assert np.all(np.abs(cam['f'] - 1145) <= 5) and np.all(np.abs(cam['c'] - 500) <= 10)
        # Aimed slightly downwards, like Human3.6M's cameras.
        assert cam['R'][2, 2] < 0.05


def test_train_samples_carry_2d_only(train_set):
    batch = unsup3d_collate(train_set.__getitems__([0, 5, 9]))
    assert set(batch) == {'inputs'}
    assert set(batch['inputs']) == {'keypoints_2d'}
    assert batch['inputs']['keypoints_2d'].shape == (3, 17, 2)
    assert 'keypoints_3d' not in train_set.arrays  # 3D is dropped at load time


def test_test_samples_have_metric_fields(test_set):
    batch = unsup3d_collate(test_set.__getitems__([0, 1]))
    sample = batch['data_samples'][0]
    assert sample.gt_instances.lifting_target.shape == (1, 17, 3)
    assert np.allclose(sample.gt_instances.lifting_target[0, 0], 0.0)  # root-relative
    assert sample.gt_instances.lifting_target_visible.shape == (1, 17)
    assert sample.target_img_path[0].startswith('mocap_')


def test_split_is_disjoint_in_frames_and_cameras(train_set, test_set):
    def frames(ds):
        out = {}
        for p in ds.arrays['img_paths']:
            action, rest = p[len('mocap_'):].split('.', 1)
            out.setdefault(action, set()).add(int(rest.split('_')[1][:6]))
        return out
    tr, te = frames(train_set), frames(test_set)
    assert set(tr) == set(te) and len(tr) == 15
    for action in tr:
        assert max(tr[action]) + 10 < min(te[action]), action  # held-out tail after a gap
    # No test 2D pose equals any training 2D pose.
    a = train_set.arrays['keypoints_2d'].reshape(len(train_set), -1)
    b = test_set.arrays['keypoints_2d'].reshape(len(test_set), -1)
    d = ((a[:, None, :8] - b[None, :, :8])**2).sum(-1)
    assert d.min() > 1e-6


def test_cameras_are_fixed_by_seed():
    a = MocapProjectionDataset(split='train', clips=['walk'])
    b = MocapProjectionDataset(split='train', clips=['walk'])
    c = MocapProjectionDataset(split='train', clips=['walk'], seed=1)
    assert np.array_equal(a.arrays['keypoints_2d'], b.arrays['keypoints_2d'])
    assert not np.allclose(a.arrays['keypoints_2d'], c.arrays['keypoints_2d'])
    # 4 cameras see each training frame of the clip.
    assert len(a) == 4 * len(a.split_frames(64)['train'])


def test_projection_is_consistent_with_3d(test_set):
    # Pixel coordinates must be a perspective projection of the (un-centred) camera 3D; with
    # root-relative 3D we can at least check that 2D bone directions match the 3D ones'.
    kp2 = test_set.arrays['keypoints_2d']
    kp3 = test_set.arrays['keypoints_3d']
    assert np.all(np.abs(kp2) < 3000)
    # Head is above the pelvis in the image (y down) for upright frames of the walk clip.
    walk = np.array(['walk' in p for p in test_set.arrays['img_paths']])
    assert np.mean(kp2[walk, 10, 1] < kp2[walk, 0, 1]) > 0.95
    assert np.mean(kp3[walk, 10, 1] < 0) > 0.95


def test_semi_supervised_labels_only_on_fraction():
    ds = MocapProjectionDataset(split='train', with_3d=True, labelled_fraction=0.1)
    assert ds.arrays['has_3d'].sum() == round(0.1 * len(ds))
    batch = ds.__getitems__(np.arange(64))
    has = batch['inputs']['has_3d']
    assert torch.all(batch['inputs']['keypoints_3d'][~has] == 0)


def test_dataloader_batches_through_getitems(train_set):
    loader = DataLoader(train_set, batch_size=32, shuffle=True, collate_fn=unsup3d_collate)
    batch = next(iter(loader))
    assert batch['inputs']['keypoints_2d'].shape == (32, 17, 2)


def test_bad_inputs_are_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'):
        MocapProjectionDataset(data_file=str(tmp_path / 'missing.npz'))
    with pytest.raises(KeyError, match='Unknown clip'):
        MocapProjectionDataset(clips=['moonwalk'])
    bad = tmp_path / 'bad.npz'
    np.savez(bad, clip_names=np.array(['a']), a=np.full((40, 17, 3), np.nan))
    with pytest.raises(ValueError, match='NaN'):
        MocapProjectionDataset(data_file=str(bad))
    nokey = tmp_path / 'nokey.npz'
    np.savez(nokey, a=np.zeros((3, 17, 3)))
    with pytest.raises(KeyError, match='clip_names'):
        MocapProjectionDataset(data_file=str(nokey))


def test_registered():
    ds = DATASETS.build(dict(type='MocapProjectionDataset', split='test', clips=['run']))
    assert len(ds) > 0 and ds.metainfo['num_keypoints'] == 17


def test_bone_scale_augmentation_changes_bodies_not_cameras():
    base = MocapProjectionDataset(split='train', clips=['walk'])
    aug = MocapProjectionDataset(split='train', clips=['walk'], with_3d=True, bone_scale_std=0.2)
    again = MocapProjectionDataset(split='train', clips=['walk'], with_3d=True,
                                   bone_scale_std=0.2)
    assert len(aug) == len(base)
    np.testing.assert_array_equal(aug.arrays['keypoints_2d'], again.arrays['keypoints_2d'])
    assert not np.allclose(aug.arrays['keypoints_2d'], base.arrays['keypoints_2d'])
    kp3 = aug.arrays['keypoints_3d'].astype(np.float64)
    n = len(aug) // 4  # 4 training cameras, one body per camera stream
    thigh = np.linalg.norm(kp3[:, 2] - kp3[:, 1], axis=-1).reshape(4, n)
    # Within one stream a bone keeps its length; the streams have different bodies.
    assert np.all(thigh.std(1) < 1e-4 * thigh.mean(1))
    assert np.ptp(thigh.mean(1)) > 0.01
    # The left and right thighs are scaled alike (the data's skeleton is symmetric).
    np.testing.assert_allclose(np.linalg.norm(kp3[:, 5] - kp3[:, 4], axis=-1), thigh.ravel(),
                               rtol=1e-4)
    # The pelvis stays where the cameras look: its 2D track is that of the unaugmented set.
    np.testing.assert_allclose(aug.arrays['keypoints_2d'][:, 0], base.arrays['keypoints_2d'][:, 0],
                               atol=1e-3)


def test_bone_scale_augmentation_leaves_the_test_split_alone():
    a = MocapProjectionDataset(split='test', clips=['walk'], bone_scale_std=0.2)
    b = MocapProjectionDataset(split='test', clips=['walk'])
    np.testing.assert_array_equal(a.arrays['keypoints_2d'], b.arrays['keypoints_2d'])
    np.testing.assert_array_equal(a.arrays['keypoints_3d'], b.arrays['keypoints_3d'])


@pytest.mark.parametrize('bad', [-0.1, 1.0, True, 'big', float('nan')])
def test_bone_scale_std_is_checked(bad):
    with pytest.raises(ValueError, match='bone_scale_std must be a number in'):
        MocapProjectionDataset(split='train', clips=['walk'], bone_scale_std=bad)
