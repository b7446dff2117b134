"""tools/dataset_converters/mocap_to_2d.py: splits, clip ranges, formats and aligned 3D."""
import json
import os

import numpy as np
import pytest

from helpers import load_tool
from mmunsup3d.datasets import MocapProjectionDataset
from mmunsup3d.datasets.keypoints_2d import Keypoints2DDataset


@pytest.fixture(scope='module')
def tool():
    return load_tool('dataset_converters', 'mocap_to_2d.py')


def _run(tool, tmp_path, *args, npz='out.npz', gt='gt.npz'):
    argv = list(args)
    if npz:
        argv += ['--npz-out', str(tmp_path / npz)]
    if gt:
        argv += ['--gt-out', str(tmp_path / gt)]
    assert tool.main(argv) == 0
    out = {}
    for key, name in (('2d', npz), ('gt', gt)):
        if name:
            with np.load(tmp_path / name, allow_pickle=False) as data:
                out[key] = {k: data[k] for k in data.files}
    return out


def _streams(seq):
    """Lengths of the runs of equal sequence ids, in row order."""
    cuts = np.flatnonzero(np.diff(seq)) + 1
    return np.diff(np.concatenate([[0], cuts, [len(seq)]])).tolist()


def test_test_split_is_the_datasets_rows(tool, tmp_path):
    out = _run(tool, tmp_path, '--split', 'test', '--clips', 'walk')
    ds = MocapProjectionDataset(split='test', clips=['walk'])
    n = len(ds)
    assert set(out['2d']) == {'keypoints', 'keypoint_scores', 'sequence_ids'}
    assert set(out['gt']) == {'keypoints_3d', 'sequence_ids', 'img_paths'}
    np.testing.assert_allclose(out['2d']['keypoints'], ds.arrays['keypoints_2d'], atol=1e-3)
    np.testing.assert_allclose(out['gt']['keypoints_3d'], ds.arrays['keypoints_3d'], atol=1e-6)
    assert (out['2d']['keypoint_scores'] == 1).all()
    assert out['2d']['sequence_ids'].tolist() == [0] * (n // 2) + [1] * (n // 2)  # 2 cameras
    np.testing.assert_array_equal(out['gt']['sequence_ids'], out['2d']['sequence_ids'])
    assert [p.replace('testcam', 'cam') for p in out['gt']['img_paths']] == \
        ds.arrays['img_paths'].tolist()


def test_train_split_halves_and_all(tool, tmp_path):
    full = _run(tool, tmp_path, '--split', 'train', '--clips', 'run', 'walk',
                npz='full.npz', gt='full_gt.npz')
    first = _run(tool, tmp_path, '--split', 'train', '--clips', 'walk', 'run', '--frames',
                 'first-half', npz='a.npz', gt='a_gt.npz')
    second = _run(tool, tmp_path, '--split', 'train', '--clips', 'walk', 'run', '--frames',
                  'second-half', npz='b.npz', gt='b_gt.npz')
    ds = MocapProjectionDataset(split='train', clips=['walk', 'run'], with_3d=True)
    np.testing.assert_allclose(full['gt']['keypoints_3d'], ds.arrays['keypoints_3d'],
                               atol=1e-6)
    lengths = _streams(full['2d']['sequence_ids'])
    assert len(lengths) == 8 and sum(lengths) == len(ds)  # 2 clips x 4 training cameras
    assert _streams(first['2d']['sequence_ids']) == [n // 2 for n in lengths]
    assert _streams(second['2d']['sequence_ids']) == [n - n // 2 for n in lengths]
    # The halves, interleaved stream by stream, are the whole split.
    halves = np.concatenate([
        part for a, b in zip(np.split(first['gt']['keypoints_3d'], np.cumsum(
            [n // 2 for n in lengths])[:-1]), np.split(second['gt']['keypoints_3d'], np.cumsum(
                [n - n // 2 for n in lengths])[:-1])) for part in (a, b)])
    np.testing.assert_array_equal(halves, full['gt']['keypoints_3d'])
    both = _run(tool, tmp_path, '--split', 'all', '--clips', 'walk', npz='all.npz',
                gt='all_gt.npz')
    paths = both['gt']['img_paths']
    assert len(_streams(both['2d']['sequence_ids'])) == 6  # 4 training + 2 test cameras
    n_train = sum(p.split('.')[1].startswith('traincam') for p in paths)
    assert n_train == len(MocapProjectionDataset(split='train', clips=['walk']))
    assert all(p.split('.')[1].startswith('testcam') for p in paths[n_train:])


def test_ground_truth_projects_to_the_2d(tool, tmp_path):
    out = _run(tool, tmp_path, '--split', 'test', '--clips', 'walk', '--npz-format', 'h36m17')
    ds = MocapProjectionDataset(split='test', clips=['walk'])
    names = sorted(str(n) for n in np.load(ds.data_file)['clip_names'])
    cams = tool.clip_cameras(ds, 'walk', names)
    seq = out['2d']['sequence_ids']
    for row in (0, len(seq) - 1):
        cam = cams[seq[row]]
        f, c = np.asarray(cam['f']).reshape(2), np.asarray(cam['c']).reshape(2)
        rel, uv = out['gt']['keypoints_3d'][row].astype(np.float64), \
            out['2d']['keypoints'][row].astype(np.float64)
        # u = f (X_rel + t) / (Z_rel + t_z) + c is linear in the unknown root t: solve it, and
        # the camera-frame 3D must reproduce the 2D through the camera that drew it.
        a, b = [], []
        for axis in (0, 1):
            du = uv[:, axis] - c[axis]
            row_a = np.zeros((17, 3))
            row_a[:, axis], row_a[:, 2] = -f[axis], du
            a.append(row_a)
            b.append(f[axis] * rel[:, axis] - du * rel[:, 2])
        root, *_ = np.linalg.lstsq(np.concatenate(a), np.concatenate(b), rcond=None)
        pts = rel + root
        proj = f * pts[:, :2] / pts[:, 2:] + c
        np.testing.assert_allclose(proj, uv, atol=1e-2)
        assert 2.0 < root[2] < 10.0  # metres in front of the camera


def test_predictions_json_coco17_round_trip(tool, tmp_path):
    out = _run(tool, tmp_path, '--split', 'test', '--clips', 'run', '--preds-out',
               str(tmp_path / 'preds.json'), '--npz-format', 'coco17', npz='coco.npz')
    doc = json.loads((tmp_path / 'preds.json').read_text())
    seq = out['gt']['sequence_ids']
    assert [f['frame_id'] for f in doc] == list(range(len(seq)))
    assert [f['instances'][0]['track_id'] for f in doc] == seq.tolist()
    coco = np.array([f['instances'][0]['keypoints'] for f in doc])
    np.testing.assert_allclose(coco, out['2d']['keypoints'], atol=6e-3)  # JSON: 0.01 px
    h36m = MocapProjectionDataset(split='test', clips=['run']).arrays['keypoints_2d']
    # Limb joints are copied by h36m_to_coco_world: COCO shoulders/knees = Human3.6M ones.
    for c, h in ((5, 11), (6, 14), (13, 5), (14, 2), (9, 13)):
        np.testing.assert_allclose(coco[:, c], h36m[:, h], atol=1e-2)
    ds = Keypoints2DDataset(ann_file=str(tmp_path / 'preds.json'), gt_file=str(tmp_path /
                                                                              'gt.npz'),
                            test_mode=True, with_next=True)
    assert len(ds) == len(seq) and ds.dropped == dict(few_keypoints=0, degenerate=0)
    np.testing.assert_allclose(ds.arrays['keypoints_3d'], out['gt']['keypoints_3d'], atol=1e-6)
    assert (ds.arrays['next_index'] >= 0).sum() == len(seq) - 2  # 2 test cameras
    npz = Keypoints2DDataset(ann_file=str(tmp_path / 'coco.npz'), keypoint_format='coco17')
    np.testing.assert_allclose(npz.arrays['keypoints_2d'], ds.arrays['keypoints_2d'], atol=0.05)


def test_corruption_reuses_keypoint_noise_settings(tool, tmp_path):
    assert tool.noise_settings(tool.DEFAULT_NOISE_CONFIG) == dict(
        std=0.03, outlier_prob=0.03, outlier_std=0.3, drop_prob=0.03)
    clean = _run(tool, tmp_path, '--split', 'train', '--clips', 'walk', npz='clean.npz', gt='')
    noisy = [_run(tool, tmp_path, '--split', 'train', '--clips', 'walk', '--corrupt', '--seed',
                  '3', '--preds-out', str(tmp_path / f'p{i}.json'), npz=f'n{i}.npz', gt='')
             for i in range(2)]
    assert (tmp_path / 'p0.json').read_bytes() == (tmp_path / 'p1.json').read_bytes()
    k0, k1 = noisy[0]['2d']['keypoints'], noisy[1]['2d']['keypoints']
    np.testing.assert_array_equal(k0, k1)  # deterministic
    ref = clean['2d']['keypoints']
    err = np.linalg.norm(k0 - ref, axis=-1)
    scores = noisy[0]['2d']['keypoint_scores']
    assert (err[:, 0] == 0).all()  # the root is the reference: never moved
    assert 0.5 < np.median(err[:, 1:]) < 10.0  # 3 % of a ~100-px pose, per axis
    assert 0.0 < (scores == 0).mean() < 0.06  # drop_prob 0.03 (root excluded)
    assert scores.min() >= 0 and scores.max() <= 1 and (scores < 0.5).any()
    ds = Keypoints2DDataset(ann_file=str(tmp_path / 'p0.json'))  # usable for training
    assert 0 < len(ds) <= len(ref)


def test_outputs_are_never_overwritten_without_flag(tool, tmp_path):
    target = tmp_path / 'x.npz'
    _run(tool, tmp_path, '--split', 'test', '--clips', 'walk', npz='x.npz', gt='')
    before = target.read_bytes()
    with pytest.raises(SystemExit, match=r'exist\(s\); pass --overwrite'):
        tool.main(['--split', 'train', '--clips', 'walk', '--npz-out', str(target)])
    assert target.read_bytes() == before
    tool.main(['--split', 'train', '--clips', 'walk', '--npz-out', str(target), '--overwrite'])
    assert target.read_bytes() != before
    assert sorted(os.listdir(tmp_path)) == ['x.npz']  # no temporary file left
    with pytest.raises(FileExistsError):
        tool.write_atomic(str(target), lambda f: f.write(b''), overwrite=False)


def test_bad_arguments(tool, tmp_path):
    with pytest.raises(SystemExit, match=r'give --preds-out and/or --npz-out'):
        tool.main(['--split', 'test', '--gt-out', str(tmp_path / 'gt.npz')])
    with pytest.raises(SystemExit, match=r'must be different files'):
        tool.main(['--split', 'test', '--npz-out', str(tmp_path / 'a.npz'), '--gt-out',
                   str(tmp_path / 'a.npz')])
    with pytest.raises(KeyError, match=r"Unknown clip\(s\) \['moonwalk'\]"):
        tool.main(['--split', 'test', '--clips', 'moonwalk', '--npz-out',
                   str(tmp_path / 'a.npz')])
    assert os.listdir(tmp_path) == []


def test_other_mocap_npz_as_source(tool, tmp_path):
    # A BVH-converted file has the embedded file's layout (bvh_to_mocap.py): clip_names + clips.
    with np.load(MocapProjectionDataset(split='test').data_file, allow_pickle=False) as data:
        clips = dict(mywalk=data['walk'], myrun=data['run'])
        fps = data['fps']
    src = tmp_path / 'other.npz'
    np.savez(src, fps=fps, joint_names=np.array([f'j{i}' for i in range(17)]),
             clip_names=np.array(sorted(clips)), **clips)
    out = _run(tool, tmp_path, '--src', str(src), '--split', 'test', '--clips', 'mywalk')
    ds = MocapProjectionDataset(data_file=str(src), split='test', clips=['mywalk'])
    np.testing.assert_allclose(out['2d']['keypoints'], ds.arrays['keypoints_2d'], atol=1e-3)
    np.testing.assert_allclose(out['gt']['keypoints_3d'], ds.arrays['keypoints_3d'], atol=1e-6)
    assert out['gt']['img_paths'][0].startswith('mocap_mywalk.testcam0_')
