"""COCO-format 2D keypoint dataset, the extra-2D wrapper and the mocap -> COCO converter."""
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from helpers import load_tool
from mmpose.registry import DATASETS
from mmunsup3d.datasets import (CocoKeypoints2DDataset, MocapProjectionDataset,
                                WithExtra2DDataset, unsup3d_collate)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SHIPPED = osp.join(REPO, 'data', 'pybullet_mocap', 'coco17_synthetic_train.json')


def _converter():
    return load_tool('dataset_converters', 'mocap_to_coco.py')


def _kpts(offset: float, vis=None):
    """Flat COCO keypoints: joint j at (offset + j, offset + 100 + j), visibility ``vis[j]``."""
    vis = [2] * 17 if vis is None else vis
    out = []
    for j in range(17):
        if vis[j] == 0:
            out += [0, 0, 0]
        else:
            out += [offset + j + 0.5, offset + 100 + j, vis[j]]
    return out


def _write(tmp_path, annotations, name='ann.json', **top):
    data = dict(images=[dict(id=1, file_name='a.jpg', width=640, height=480)],
                annotations=annotations,
                categories=[dict(id=1, name='person')])
    data.update(top)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def _ann(ann_id, offset, vis=None, **extra):
    vis = [2] * 17 if vis is None else vis
    ann = dict(id=ann_id, image_id=1, category_id=1, iscrowd=0, bbox=[0, 0, 10, 10],
               keypoints=_kpts(offset, vis), num_keypoints=sum(v > 0 for v in vis))
    ann.update(extra)
    return ann


@pytest.fixture
def two_ann_file(tmp_path):
    vis_b = [2] * 17
    vis_b[3] = 0
    vis_b[4] = 1
    scores_a = [round(0.05 * j, 2) for j in range(17)]
    scores_a[6] = 0.9
    vis_a = [2] * 17
    vis_a[6] = 0  # labelled "not visible": score 0 whatever the field says
    anns = [_ann(11, 10.0, vis_a, keypoint_scores=scores_a), _ann(12, 300.0, vis_b)]
    return _write(tmp_path, anns), anns


@pytest.fixture
def extra_file(tmp_path):
    anns = [_ann(100 + i, 1000.0 * i, keypoint_scores=[0.5 + 0.01 * i] * 17) for i in range(20)]
    return _write(tmp_path, anns, name='extra.json')


@pytest.fixture(scope='module')
def main_set():
    return MocapProjectionDataset(split='train', clips=['run'])


# --------------------------------------------------------------------------- dataset
def test_arrays_match_json(two_ann_file):
    path, anns = two_ann_file
    ds = CocoKeypoints2DDataset(ann_file=path)
    assert len(ds) == 2
    kpts, scores = ds.arrays['keypoints_2d'], ds.arrays['keypoint_scores']
    assert kpts.shape == (2, 17, 2) and kpts.dtype == np.float32
    assert scores.shape == (2, 17) and scores.dtype == np.float32
    for row, ann in enumerate(anns):
        raw = np.asarray(ann['keypoints'], np.float32).reshape(17, 3)
        np.testing.assert_array_equal(kpts[row], raw[:, :2])
    assert ds.arrays['ann_ids'].tolist() == [11, 12]
    batch = unsup3d_collate(ds.__getitems__([1, 0]))
    assert set(batch['inputs']) == {'keypoints_2d', 'keypoint_scores'}
    np.testing.assert_array_equal(batch['inputs']['keypoints_2d'].numpy(), kpts[[1, 0]])


def test_scores_from_field_or_visibility(two_ann_file):
    path, anns = two_ann_file
    scores = CocoKeypoints2DDataset(ann_file=path).arrays['keypoint_scores']
    expected_a = np.asarray(anns[0]['keypoint_scores'], np.float32)
    expected_a[6] = 0.0  # v == 0 overrides the field's 0.9
    np.testing.assert_allclose(scores[0], expected_a)
    expected_b = np.ones(17, np.float32)
    expected_b[3] = 0.0  # v = 0
    # v = 1 (labelled, occluded) also gives 1
    np.testing.assert_array_equal(scores[1], expected_b)


def test_crowd_and_min_keypoints_filtering(tmp_path):
    few = [0] * 17
    few[5] = few[6] = few[7] = 2
    anns = [
        _ann(1, 0.0),
        _ann(2, 50.0, iscrowd=1),
        _ann(3, 100.0, few),
        _ann(4, 150.0, [0] * 17),
    ]
    path = _write(tmp_path, anns)
    assert CocoKeypoints2DDataset(ann_file=path).arrays['ann_ids'].tolist() == [1, 3]
    assert CocoKeypoints2DDataset(ann_file=path, min_keypoints=4).arrays['ann_ids'].tolist() \
        == [1]
    # min_keypoints=0 keeps the all-unlabelled annotation; the crowd region stays out.
    assert CocoKeypoints2DDataset(ann_file=path, min_keypoints=0).arrays['ann_ids'].tolist() \
        == [1, 3, 4]


def test_data_root_and_registry(two_ann_file):
    path, _ = two_ann_file
    ds = DATASETS.build(dict(type='CocoKeypoints2DDataset', ann_file=osp.basename(path),
                             data_root=osp.dirname(path)))
    assert len(ds) == 2
    assert ds.metainfo['dataset_name'] == 'coco'
    assert ds.metainfo['keypoint_id2name'][1] == 'left_eye'
    assert ds.metainfo['num_keypoints'] == 17


def test_errors(tmp_path, two_ann_file):
    path, _ = two_ann_file
    with pytest.raises(FileNotFoundError, match='nope.json'):
        CocoKeypoints2DDataset(ann_file=str(tmp_path / 'nope.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text('{"annotations": [')
    with pytest.raises(ValueError, match='bad.json is not valid JSON'):
        CocoKeypoints2DDataset(ann_file=str(bad))
    no_ann = tmp_path / 'no_ann.json'
    no_ann.write_text(json.dumps(dict(images=[], categories=[])))
    with pytest.raises(ValueError, match='no_ann.json has no "annotations" key'):
        CocoKeypoints2DDataset(ann_file=str(no_ann))
    short = _ann(7, 0.0)
    short['keypoints'] = short['keypoints'][:-3]
    with pytest.raises(ValueError, match=r'annotation id 7: keypoints must be .* 51 numbers'):
        CocoKeypoints2DDataset(ann_file=_write(tmp_path, [_ann(1, 0.0), short], 'short.json'))
    nan = _ann(8, 0.0)
    nan['keypoints'][4] = float('nan')  # json writes the NaN literal, json.load reads it back
    with pytest.raises(ValueError, match='annotation id 8: keypoints contain NaN or inf'):
        CocoKeypoints2DDataset(ann_file=_write(tmp_path, [nan], 'nan.json'))
    bad_scores = _ann(9, 0.0, keypoint_scores=[1.0] * 16)
    with pytest.raises(ValueError, match='annotation id 9: keypoint_scores must hold 17'):
        CocoKeypoints2DDataset(ann_file=_write(tmp_path, [bad_scores], 'sc.json'))
    with pytest.raises(ValueError, match='no usable annotations'):
        CocoKeypoints2DDataset(
            ann_file=_write(tmp_path, [_ann(1, 0.0, iscrowd=1)], 'crowd.json'))
    with pytest.raises(ValueError, match='test mode'):
        CocoKeypoints2DDataset(ann_file=path, test_mode=True)


# --------------------------------------------------------------------------- wrapper
def _rows_of(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index of each row of ``values`` in ``table`` (asserting every row is found)."""
    flat_v = values.reshape(len(values), -1)
    flat_t = table.reshape(len(table), -1)
    eq = (flat_v[:, None] == flat_t[None]).all(-1)
    assert eq.any(1).all(), 'an extra row is not a row of the extra dataset'
    return eq.argmax(1)


def test_wrapper_batch(main_set, extra_file):
    extra = CocoKeypoints2DDataset(ann_file=extra_file)
    ds = WithExtra2DDataset(main_set, extra, seed=3)
    assert len(ds) == len(main_set)
    assert ds.metainfo is main_set.metainfo
    idx = [0, 4, 2, 7, 1, 3]
    batch = ds.__getitems__(idx)
    assert batch.get('_unsup3d_batch') is True
    inputs = batch['inputs']
    assert set(inputs) == {'keypoints_2d', 'extra_keypoints_2d', 'extra_keypoint_scores'}
    ref = main_set.__getitems__(idx)['inputs']
    assert torch.equal(inputs['keypoints_2d'], ref['keypoints_2d'])
    assert inputs['extra_keypoints_2d'].shape == (6, 17, 2)
    assert inputs['extra_keypoint_scores'].shape == (6, 17)
    assert inputs['extra_keypoints_2d'].dtype == torch.float32
    assert inputs['extra_keypoint_scores'].dtype == torch.float32
    rows = _rows_of(inputs['extra_keypoints_2d'].numpy(), extra.arrays['keypoints_2d'])
    np.testing.assert_array_equal(inputs['extra_keypoint_scores'].numpy(),
                                  extra.arrays['keypoint_scores'][rows])
    out = unsup3d_collate(batch)
    assert '_unsup3d_batch' not in out and set(out['inputs']) == set(inputs)
    single = ds[5]
    assert single['inputs']['extra_keypoints_2d'].shape == (17, 2)
    assert torch.equal(single['inputs']['keypoints_2d'], main_set[5]['inputs']['keypoints_2d'])


def test_wrapper_draws_are_seeded(main_set, extra_file):
    extra = CocoKeypoints2DDataset(ann_file=extra_file)

    def draws(seed):
        ds = WithExtra2DDataset(main_set, extra, seed=seed)
        return [ds.__getitems__(list(range(8)))['inputs']['extra_keypoints_2d']
                for _ in range(3)]

    a, b, c = draws(0), draws(0), draws(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert not torch.equal(a[0], a[1])  # the generator advances per call
    # Uniform with replacement: over many draws every extra row shows up.
    ds = WithExtra2DDataset(main_set, extra, seed=0)
    seen = set()
    for _ in range(20):
        seen |= set(_rows_of(ds.__getitems__(list(range(8)))['inputs']['extra_keypoints_2d']
                             .numpy(), extra.arrays['keypoints_2d']).tolist())
    assert seen == set(range(len(extra)))


def test_wrapper_from_configs_and_dataloader(extra_file):
    ds = DATASETS.build(dict(
        type='WithExtra2DDataset',
        dataset=dict(type='MocapProjectionDataset', split='train', clips=['run']),
        extra=dict(type='CocoKeypoints2DDataset', ann_file=extra_file),
        seed=5))
    loader = DataLoader(ds, batch_size=4, shuffle=False, collate_fn=unsup3d_collate)
    batches = list(loader)
    assert len(batches) == math.ceil(len(ds) / 4)
    first = batches[0]
    assert set(first) == {'inputs'}
    assert first['inputs']['keypoints_2d'].shape == (4, 17, 2)
    assert first['inputs']['extra_keypoints_2d'].shape == (4, 17, 2)
    assert first['inputs']['extra_keypoint_scores'].shape == (4, 17)
    assert torch.equal(first['inputs']['keypoints_2d'],
                       ds.dataset.__getitems__([0, 1, 2, 3])['inputs']['keypoints_2d'])
    # A list of single samples (``__getitem__``) collates to the same layout.
    stacked = unsup3d_collate([ds[0], ds[1]])
    assert stacked['inputs']['extra_keypoints_2d'].shape == (2, 17, 2)


def test_wrapper_in_dataloader_workers(main_set, extra_file):
    """Workers re-seed from torch's per-worker seed: no repeats across workers, reproducible."""
    ds = WithExtra2DDataset(main_set, CocoKeypoints2DDataset(ann_file=extra_file), seed=0)

    def run(torch_seed):
        torch.manual_seed(torch_seed)
        loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=unsup3d_collate)
        return [b['inputs']['extra_keypoints_2d'] for b in loader]

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], a[1])  # batches 0 and 1 come from different workers
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_wrapper_extra_without_scores_and_test_mode(main_set):
    ds = WithExtra2DDataset(main_set, MocapProjectionDataset(split='train', clips=['walk']))
    scores = ds.__getitems__([0, 1, 2])['inputs']['extra_keypoint_scores']
    assert torch.equal(scores, torch.ones(3, 17))
    with pytest.raises(ValueError, match='test mode'):
        WithExtra2DDataset(main_set, MocapProjectionDataset(split='test', clips=['walk']))


# --------------------------------------------------------------------------- converter
def _upright_person_facing_plus_y() -> np.ndarray:
    """Human3.6M-17 world pose (metres, Z up) of a person standing at the origin facing +y.

    Facing +y with up +z, the person's right is ``forward x up = +x`` and left is ``-x``.
    The head follows the shipped mocap's rigid head: head top 0.2775 m straight above the
    thorax, joint 9 (front of the head sphere) 0.175 m above and 0.1025 m in front of it.
    """
    p = np.zeros((17, 3))
    p[0] = [0, 0, 0.85]                                   # pelvis
    p[1], p[2], p[3] = [0.085, 0, 0.85], [0.085, 0, 0.43], [0.085, 0, 0.05]      # right leg
    p[4], p[5], p[6] = [-0.085, 0, 0.85], [-0.085, 0, 0.43], [-0.085, 0, 0.05]   # left leg
    p[7] = [0, 0, 1.086]                                  # spine
    p[8] = [0, 0, 1.31]                                   # thorax
    p[9] = [0, 0.1025, 1.31 + 0.175]                      # neck/nose (front of head)
    p[10] = [0, 0, 1.31 + 0.2775]                         # head top
    p[11], p[12], p[13] = [-0.183, 0, 1.33], [-0.2, 0, 1.06], [-0.2, 0, 0.8]    # left arm
    p[14], p[15], p[16] = [0.183, 0, 1.33], [0.2, 0, 1.06], [0.2, 0, 0.8]       # right arm
    return p


def test_converter_geometry_upright_person():
    conv = _converter()
    h36m = _upright_person_facing_plus_y()
    up, left, forward = conv.head_frame(h36m)
    np.testing.assert_allclose(up, [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(left, [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(forward, [0, 1, 0], atol=1e-12)
    coco = conv.h36m_to_coco_world(h36m)
    nose, l_eye, r_eye, l_ear, r_ear = coco[:5]
    assert l_eye[0] < nose[0] < r_eye[0]          # left eye on the person's left (-x)
    assert l_ear[0] < nose[0] < r_ear[0]
    assert l_eye[2] > nose[2] and r_eye[2] > nose[2]          # eyes above the nose
    assert l_ear[1] < nose[1] and r_ear[1] < nose[1]          # ears behind (forward is +y)
    assert nose[1] > h36m[9, 1]                    # nose pushed forward of joint 9
    np.testing.assert_allclose(nose, h36m[9] + [0, 0.04, 0])
    np.testing.assert_allclose(l_eye, nose + [-0.032, -0.02, 0.035])
    np.testing.assert_allclose(r_ear, h36m[9] + [0.075, -0.06, 0.06])
    # Limbs copied, hips wider and higher than Human3.6M's.
    for c, h in ((5, 11), (6, 14), (9, 13), (10, 16), (15, 6), (16, 3)):
        np.testing.assert_array_equal(coco[c], h36m[h])
    assert coco[11][0] < h36m[4][0] and coco[12][0] > h36m[1][0]
    assert coco[11][2] > h36m[4][2] and coco[12][2] > h36m[1][2]
    np.testing.assert_allclose(coco[11], h36m[4] + 0.2 * (h36m[4] - h36m[0]) +
                               0.12 * (h36m[7] - h36m[0]))


def test_converter_face_follows_head_and_rotation():
    conv = _converter()
    h36m = _upright_person_facing_plus_y()
    # Turn the head 90 degrees to the person's left (about the vertical through the thorax):
    # the face now points to -x while the shoulders still face +y.
    turned = h36m.copy()
    rel = turned[9] - turned[8]
    turned[9] = turned[8] + [-rel[1], rel[0], rel[2]]
    coco = conv.h36m_to_coco_world(turned)
    assert coco[0][0] < turned[9][0]               # nose in front of the face (-x)
    assert coco[1][1] < coco[0][1] < coco[2][1]    # left eye now on -y
    # Rigid motions of the person move the COCO joints along with it.
    a = 0.7
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    shift = np.array([1.0, -2.0, 0.0])
    np.testing.assert_allclose(conv.h36m_to_coco_world(h36m @ rot.T + shift),
                               conv.h36m_to_coco_world(h36m) @ rot.T + shift, atol=1e-12)


def test_detector_noise_statistics():
    conv = _converter()
    rng = np.random.default_rng(0)
    clean = rng.uniform(300, 700, size=(4000, 17, 2))
    kpts, vis, scores = conv.add_detector_noise(clean, np.random.default_rng(1))
    missing = vis == 0
    assert 0.015 < missing.mean() < 0.025
    assert np.all(kpts[missing] == 0) and np.all(scores[missing] == 0)
    assert set(np.unique(vis).tolist()) == {0, 2}
    assert scores.min() >= 0 and scores.max() <= 1
    assert np.all(scores[~missing] >= 0.02)
    assert np.allclose(kpts * 10, np.round(kpts * 10), atol=1e-6)
    diag = np.linalg.norm(clean.max(1) - clean.min(1), axis=-1)[:, None]
    err = np.linalg.norm(kpts - clean, axis=-1) / diag
    far = ~missing & (err > 0.09)  # Gaussian noise (std 0.015 diag) essentially never this far
    assert 0.04 < far.mean() < 0.06
    assert np.all(scores[far] <= 0.3)
    again = conv.add_detector_noise(clean, np.random.default_rng(1))
    assert all(np.array_equal(x, y) for x, y in zip((kpts, vis, scores), again))


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp('coco') / 'synthetic.json'
    assert _converter().main(['--frame-step', '20', '--out', str(out)]) == 0
    assert not osp.exists(str(out) + '.part')
    with open(out) as f:
        return json.load(f), str(out)


def test_converter_uses_training_frames_only(converted):
    data, path = converted
    split = MocapProjectionDataset(split='train', clips=['walk'])
    with np.load(split.data_file) as npz:
        lengths = {str(n): len(npz[str(n)]) for n in npz['clip_names']}
    expected = sum(len(split.split_frames(t)['train'][::20]) * 2 for t in lengths.values())
    assert len(data['annotations']) == len(data['images']) == expected
    frames = {}
    for img in data['images']:
        stem = img['file_name'][len('mocap_'):-len('.jpg')]
        clip, rest = stem.split('.cam')
        cam, frame = rest.split('_')
        frames.setdefault(clip, set()).add(int(frame))
        assert int(cam) in (0, 1)
        assert img['width'] == img['height'] == 1000
    assert set(frames) == set(lengths)
    for clip, used in frames.items():
        parts = split.split_frames(lengths[clip])
        assert used <= set(parts['train'].tolist()), clip
        assert not used & set(parts['test'].tolist()), clip
        assert max(used) < min(parts['test']), clip
    ann = data['annotations'][0]
    assert len(ann['keypoints']) == 51 and len(ann['keypoint_scores']) == 17
    assert ann['category_id'] == 1 and ann['iscrowd'] == 0
    assert ann['area'] == pytest.approx(ann['bbox'][2] * ann['bbox'][3], abs=0.1)
    cat = data['categories'][0]
    assert cat['keypoints'][1] == 'left_eye' and [16, 14] in cat['skeleton']
    # The file loads as a dataset.
    assert len(CocoKeypoints2DDataset(ann_file=path)) == expected


def test_converter_cameras_are_new(converted):
    """The synthetic views differ from the benchmark dataset's training views."""
    data, _ = converted
    clean = MocapProjectionDataset(split='train', clips=['walk'])
    ours = np.array([a['keypoints'] for a, img in zip(data['annotations'], data['images'])
                     if img['file_name'].startswith('mocap_walk.cam')
                     and img['file_name'].endswith('_000000.jpg')]).reshape(-1, 17, 3)
    assert len(ours) == 2
    rows = [i for i, p in enumerate(clean.arrays['img_paths']) if p.endswith('_000000.jpg')]
    assert len(rows) == 4
    # Shoulders, elbows, hips' neighbours: COCO 5, 6, 7, 8, 13, 14 = H36M 11, 14, 12, 15, 5, 2.
    theirs = clean.arrays['keypoints_2d'][rows][:, None, [11, 14, 12, 15, 5, 2]]
    dist = np.linalg.norm(theirs - ours[None, :, [5, 6, 7, 8, 13, 14], :2], axis=-1).mean(-1)
    assert dist.min() > 30  # pixels, mean over 6 joints (noise std is ~5 px)


def test_shipped_json(tmp_path):
    ds = CocoKeypoints2DDataset(ann_file='data/pybullet_mocap/coco17_synthetic_train.json')
    scores = ds.arrays['keypoint_scores']
    assert len(ds) > 1000
    assert scores.min() >= 0 and scores.max() <= 1
    assert (scores == 0).any()                            # missing joints
    assert ((scores > 0) & (scores < 0.3)).mean() > 0.03  # detector failures
    assert osp.getsize(SHIPPED) < 1.5 * 2**20
    # The documented command regenerates it exactly.
    out = tmp_path / 'regen.json'
    _converter().main(['--out', str(out)])
    with open(SHIPPED) as f, open(out) as g:
        assert json.load(f) == json.load(g)
