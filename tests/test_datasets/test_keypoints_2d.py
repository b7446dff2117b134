"""Keypoints2DDataset: MMPose predictions, COCO keypoints and npz files as the training set."""
import json
import math
import os.path as osp

import numpy as np
import pytest

from helpers import tiny_cfg
from mmpose.registry import DATASETS
from mmunsup3d.datasets import MocapProjectionDataset
from mmunsup3d.datasets import keypoints_2d as k2d
from mmunsup3d.datasets.keypoints_2d import Keypoints2DDataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TDISC_CONFIG = osp.join(REPO, 'configs', 'unsup3d',
                        'unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-200e_'
                        'pybullet-mocap.py')

# One upright person facing the camera, COCO-17 order (their left is the image's right).
COCO_POSE = np.array([
    [50, 20], [54, 16], [46, 16], [58, 18], [42, 18],  # nose, eyes, ears
    [70, 40], [30, 40], [75, 60], [25, 60], [78, 80], [22, 80],  # shoulders, elbows, wrists
    [60, 100], [40, 100], [62, 140], [38, 140], [63, 180], [37, 180]], dtype=np.float64)
COCO_SCORES = 0.5 + 0.02 * np.arange(17)
# The same person in Human3.6M-17 order, by hand from the mapping rule of coco_to_h36m.
H36M_POSE = np.array([
    [50, 100],  # pelvis = mid-hips
    [40, 100], [38, 140], [37, 180],  # right hip, knee, ankle
    [60, 100], [62, 140], [63, 180],  # left hip, knee, ankle
    [50, 70],  # spine = mid(pelvis, thorax)
    [50, 40],  # thorax = mid-shoulders
    [50, 20],  # neck/nose = nose
    [50, 8],  # head top = C + 2 (C - nose), C = mid-eyes (50, 16)
    [70, 40], [75, 60], [78, 80],  # left shoulder, elbow, wrist
    [30, 40], [25, 60], [22, 80]], dtype=np.float64)  # right shoulder, elbow, wrist
S = COCO_SCORES
H36M_SCORES = np.array([
    min(S[11], S[12]), S[12], S[14], S[16], S[11], S[13], S[15], min(S[5], S[6], S[11], S[12]),
    min(S[5], S[6]), S[0], min(S[1], S[2], S[0]), S[5], S[7], S[9], S[6], S[8], S[10]])


def _pose(shift: float = 0.0, coco: bool = True) -> np.ndarray:
    return (COCO_POSE if coco else H36M_POSE) + shift


def _instance(shift=0.0, scores=None, **extra):
    inst = dict(keypoints=_pose(shift).tolist(),
                keypoint_scores=(COCO_SCORES if scores is None else scores).tolist(),
                bbox=[[0, 0, 100, 200]], bbox_score=1.0)
    inst.update(extra)
    return inst


def _write_json(tmp_path, data, name='preds.json'):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def _write_npz(tmp_path, name='kpts.npz', **arrays):
    path = str(tmp_path / name)
    np.savez(path, **arrays)
    return path


def _flat_coco(shift=0.0, vis=None):
    vis = np.full(17, 2) if vis is None else np.asarray(vis)
    pose = _pose(shift)
    flat = np.concatenate([np.where(vis[:, None] > 0, pose, 0.0), vis[:, None]], axis=1)
    return flat.ravel().tolist()


def _coco_file(tmp_path, anns, images=None, name='coco.json'):
    images = images or [dict(id=1, file_name='a.jpg')]
    return _write_json(tmp_path, dict(images=images, annotations=anns,
                                      categories=[dict(id=1, name='person')]), name)


# --------------------------------------------------------------------------- each format
def test_mmpose_preds_coco17_converted_by_hand(tmp_path):
    path = _write_json(tmp_path, [dict(frame_id=0, instances=[_instance()])])
    ds = Keypoints2DDataset(ann_file=path)
    assert ds.file_format == 'mmpose_preds' and ds.keypoint_format == 'coco17'
    np.testing.assert_allclose(ds.arrays['keypoints_2d'][0], H36M_POSE, atol=1e-5)
    np.testing.assert_allclose(ds.arrays['keypoint_scores'][0], H36M_SCORES, atol=1e-6)
    assert ds.arrays['record_index'].tolist() == [0]
    assert ds.dropped == dict(few_keypoints=0, degenerate=0)
    assert len(ds) == 1 and ds.metainfo['num_keypoints'] == 17
    assert DATASETS.get('Keypoints2DDataset') is Keypoints2DDataset


def test_mmpose_preds_image_file_and_wrappers(tmp_path):
    for i, doc in enumerate(([_instance(), _instance(5.0)],
                             dict(instance_info=[_instance(), _instance(5.0)]))):
        ds = Keypoints2DDataset(ann_file=_write_json(tmp_path, doc, f'img{i}.json'))
        assert len(ds) == 2 and 'next_index' not in ds.arrays  # an image: no time
        np.testing.assert_allclose(ds.arrays['keypoints_2d'][1], H36M_POSE + 5, atol=1e-5)


def test_mmpose_preds_temporal_pairs_from_track_ids(tmp_path):
    frames = [
        dict(frame_id=0, instances=[_instance(0, track_id=5), _instance(300, track_id=7)]),
        # Instance order changes: pairs follow the track ids, not the positions.
        dict(frame_id=1, instances=[_instance(301, track_id=7), _instance(1, track_id=5)]),
        dict(frame_id=2, instances=[_instance(2, track_id=5)]),
        dict(frame_id=4, instances=[_instance(4, track_id=5)]),  # frame 3 missing: no pair
    ]
    ds = Keypoints2DDataset(ann_file=_write_json(tmp_path, frames), with_next=True)
    # rows: 0 (f0 t5), 1 (f0 t7), 2 (f1 t7), 3 (f1 t5), 4 (f2 t5), 5 (f4 t5)
    assert ds.arrays['next_index'].tolist() == [3, 2, -1, 4, -1, -1]
    batch = ds.__getitems__([0, 5])['inputs']
    assert batch['has_next'].tolist() == [True, False]
    np.testing.assert_allclose(batch['keypoints_2d_next'][0].numpy(), H36M_POSE + 1,
                               atol=1e-4)


def test_mmpose_preds_single_instance_frames_are_one_track(tmp_path):
    frames = [dict(frame_id=f, instances=[_instance(f)]) for f in range(3)]
    frames.append(dict(frame_id=3, instances=[_instance(3), _instance(200)]))  # two, no ids
    frames.append(dict(frame_id=4, instances=[_instance(4)]))
    ds = Keypoints2DDataset(ann_file=_write_json(tmp_path, frames), with_next=True)
    assert ds.arrays['next_index'].tolist() == [1, 2, -1, -1, -1, -1]


def test_coco_annotations_scores_crowd_and_posetrack_pairs(tmp_path):
    vis = np.full(17, 2)
    vis[16] = 0  # right ankle not labelled: score 0, filled from the left leg
    vis[15] = 1
    images = [dict(id=i, file_name=f'{i}.jpg', vid_id='v1', frame_id=100 + i) for i in range(3)]
    anns = [
        dict(id=10, image_id=0, keypoints=_flat_coco(0, vis), track_id=3),
        dict(id=11, image_id=0, keypoints=_flat_coco(500), iscrowd=1),
        dict(id=12, image_id=1, keypoints=_flat_coco(1), track_id=3,
             keypoint_scores=COCO_SCORES.tolist()),
        dict(id=13, image_id=2, keypoints=_flat_coco(2)),  # the only one in its image
        dict(id=14, image_id=9, keypoints=_flat_coco(3)),  # image without video info
    ]
    ds = Keypoints2DDataset(ann_file=_coco_file(tmp_path, anns, images), with_next=True)
    assert ds.file_format == 'coco' and len(ds) == 4 and ds.dropped['crowd'] == 1
    sc = ds.arrays['keypoint_scores']
    assert sc[0, 3] == 0.0 and sc[0, 6] == 1.0  # H36M right ankle <- COCO 16, left <- 15 (v 1)
    np.testing.assert_allclose(sc[1], H36M_SCORES, atol=1e-6)
    # Filled right ankle: right knee + (left ankle - left knee).
    np.testing.assert_allclose(ds.arrays['keypoints_2d'][0, 3], [38 + 1, 140 + 40], atol=1e-5)
    # Track 3 pairs frames 100 -> 101; annotation 13 (single, no track id) is another track.
    assert ds.arrays['next_index'].tolist() == [1, -1, -1, -1]
    assert ds.arrays['record_index'].tolist() == [0, 1, 2, 3]  # among non-crowd records


def test_coco_results_third_value_is_the_score(tmp_path):
    flat = np.concatenate([COCO_POSE, COCO_SCORES[:, None]], 1).ravel().tolist()
    path = _write_json(tmp_path, [dict(image_id=1, category_id=1, keypoints=flat, score=0.9)])
    ds = Keypoints2DDataset(ann_file=path)
    assert ds.file_format == 'coco' and 'next_index' not in ds.arrays
    np.testing.assert_allclose(ds.arrays['keypoint_scores'][0], H36M_SCORES, atol=1e-6)
    np.testing.assert_allclose(ds.arrays['keypoints_2d'][0], H36M_POSE, atol=1e-5)


def test_npz_h36m17_sequence_ids_and_scores_alias(tmp_path):
    kpts = np.stack([_pose(i, coco=False) for i in range(6)])
    path = _write_npz(tmp_path, keypoints=kpts, sequence_ids=np.array([4, 4, 4, 9, 9, 2]))
    ds = Keypoints2DDataset(ann_file=path, keypoint_format='h36m17', with_next=True)
    assert ds.file_format == 'npz'
    assert ds.arrays['next_index'].tolist() == [1, 2, -1, 4, -1, -1]
    np.testing.assert_allclose(ds.arrays['keypoints_2d'], kpts, atol=1e-5)
    assert (ds.arrays['keypoint_scores'] == 1).all()
    alias = _write_npz(tmp_path, 'alias.npz', keypoints=kpts, scores=np.full((6, 17), 0.9))
    ds = Keypoints2DDataset(ann_file=alias, keypoint_format='h36m17')
    np.testing.assert_allclose(ds.arrays['keypoint_scores'], 0.9, atol=1e-6)
    # COCO-17 npz: converted like the other formats.
    coco = _write_npz(tmp_path, 'coco.npz', keypoints=COCO_POSE[None],
                      keypoint_scores=COCO_SCORES[None])
    ds = Keypoints2DDataset(ann_file=coco, keypoint_format='coco17')
    np.testing.assert_allclose(ds.arrays['keypoints_2d'][0], H36M_POSE, atol=1e-5)


def test_dropped_instances_are_counted_logged_and_unpaired(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(k2d, 'print_log', lambda msg, **kw: logged.append(msg))
    low = COCO_SCORES.copy()
    low[[0, 1, 2, 13, 14, 15, 16]] = 0.1  # face, knees, ankles: 6 of 17 H36M joints low
    flat = np.tile(COCO_POSE[:1], (17, 1))
    flat[:, 1] += np.arange(17)  # every joint on one vertical line: degenerate
    frames = [
        dict(frame_id=0, instances=[_instance(0, track_id=1)]),
        dict(frame_id=1, instances=[_instance(1, low, track_id=1)]),
        dict(frame_id=2, instances=[_instance(2, track_id=1)]),
        dict(frame_id=3, instances=[dict(keypoints=flat.tolist(), track_id=1)]),
        dict(frame_id=4, instances=[_instance(4, track_id=1)]),
        dict(frame_id=5, instances=[_instance(5, track_id=1)]),
    ]
    ds = Keypoints2DDataset(ann_file=_write_json(tmp_path, frames), with_next=True,
                            check_format=False)
    assert ds.dropped == dict(few_keypoints=1, degenerate=1)
    assert ds.arrays['record_index'].tolist() == [0, 2, 4, 5]
    assert ds.arrays['next_index'].tolist() == [-1, -1, 3, -1]  # pairs through dropped rows cut
    assert '4 of 6 poses kept' in logged[-1] and '1 with fewer than min_keypoints=13' in \
        logged[-1] and '1 degenerate' in logged[-1]
    # min_keypoints=0 keeps the low-score pose (its joints filled), never the degenerate one.
    ds = Keypoints2DDataset(ann_file=_write_json(tmp_path, frames), min_keypoints=0,
                            check_format=False)
    assert ds.dropped == dict(few_keypoints=0, degenerate=1) and len(ds) == 5
    with pytest.raises(ValueError, match=r'no usable pose: all 1 were dropped'):
        Keypoints2DDataset(ann_file=_write_json(
            tmp_path, [dict(frame_id=0, instances=[_instance(0, low)])], 'low.json'))


# --------------------------------------------------------------------------- errors
def _bad_npz(tmp_path, **arrays):
    return _write_npz(tmp_path, 'bad.npz', **arrays)


def _nan_instance():
    inst = _instance()
    inst['keypoints'][4][1] = float('nan')
    return inst


BAD_JSON = {
    'no frame instances': ([dict(frame_id=0, instances=[]), dict(frame_id=1, instances=[])],
                           r'no instance in any of its 2 frame\(s\)'),
    'empty list': ([], r'empty list: no person'),
    'NaN in predictions': ([dict(frame_id=0, instances=[_instance()]),
                            dict(frame_id=7, instances=[_instance(), _nan_instance()])],
                           r'frame 7 \(entry 1\), instance 1: keypoints contain NaN'),
    'keypoints of 16 joints': ([dict(frame_id=0, instances=[_instance()]), dict(
        frame_id=1, instances=[dict(keypoints=COCO_POSE[:16].tolist())])],
        r'frame 1 \(entry 1\), instance 0: keypoints must have shape \(17, 2\), got \(16, 2\)'),
    'scores of 18 joints': ([dict(frame_id=0, instances=[
        _instance(scores=np.ones(18))])], r'instance 0: keypoint_scores must have shape \(17,\)'),
    'keypoints not numbers': ([dict(frame_id=0, instances=[dict(keypoints=[['a', 'b']] * 17)])],
                              r'frame 0 \(entry 0\), instance 0: keypoints must hold numbers'),
    'frames mixed with instances': ([dict(frame_id=0, instances=[_instance()]), _instance()],
                                    r'entry 1: expected a frame .* mixes video frames'),
    'instance without keypoints': ([dict(frame_id=0, instances=[dict(bbox=[1, 2, 3, 4])])],
                                   r'frame 0 \(entry 0\), instance 0: expected an instance'),
    'COCO results mixed with frames': ([dict(image_id=1, keypoints=_flat_coco()),
                                        dict(frame_id=0, instances=[_instance()])],
                                       r'result 1: expected a COCO keypoint result'),
    'unknown JSON object': (dict(people=[_instance()]), r"unrecognised JSON object \(keys "
                                                        r"\['people'\]\)"),
    'repeated frame id': ([dict(frame_id=3, instances=[_instance()]),
                           dict(frame_id=3, instances=[_instance()])],
                          r'entry 1: frame_id 3 repeats entry 0'),
    'bool frame id': ([dict(frame_id=True, instances=[_instance()])],
                      r'entry 0: "frame_id" must be an integer'),
    'one track twice in a frame': ([dict(frame_id=0, instances=[
        _instance(0, track_id=2), _instance(9, track_id=2)])],
        r'frame 0 \(entry 0\), instance 1: same track as .*instance 0 in the same frame'),
    'scores above 1': ([dict(frame_id=0, instances=[_instance(scores=np.full(17, 1.2))])],
                       r'instance 0: scores must lie in \[0, 1\]; joint 0 has 1\.2 .*'
                       r'clip_scores=True'),
    'coordinates beyond MAX_ABS_COORD': ([dict(frame_id=0, instances=[_instance(2e6)])],
                                         r'instance 0: keypoints exceed \|1e\+06\| px'),
    'COCO keypoints of 50 numbers': (dict(annotations=[dict(id=1, keypoints=_flat_coco()),
                                                       dict(id=5, keypoints=[1.0] * 50)]),
                                     r'annotation 1 \(id 5\): keypoints .* must have shape '
                                     r'\(51,\), got \(50,\)'),
    'COCO NaN': (dict(annotations=[dict(id=4, keypoints=_flat_coco()[:-1] + [float('nan')])]),
                 r'annotation 0 \(id 4\): keypoints .* contain NaN'),
    'COCO no annotations': (dict(images=[], annotations=[]), r'no annotation in the file'),
    'COCO crowd only': (dict(annotations=[dict(id=1, keypoints=_flat_coco(), iscrowd=1)]),
                        r'all 1 annotations are crowd regions'),
    'COCO annotation without keypoints': (dict(annotations=[dict(id=1, bbox=[0, 0, 1, 1])]),
                                          r'annotation 0: expected a COCO keypoint annotation'),
}


@pytest.mark.parametrize('case', sorted(BAD_JSON))
def test_bad_json_files_name_file_and_record(tmp_path, case):
    data, pattern = BAD_JSON[case]
    path = _write_json(tmp_path, data, 'bad.json')
    with pytest.raises(ValueError, match=pattern) as excinfo:
        Keypoints2DDataset(ann_file=path)
    assert path in str(excinfo.value)


def test_bad_npz_files_name_file_and_record(tmp_path):
    kpts = np.stack([_pose(i, coco=False) for i in range(3)])
    nan = kpts.copy()
    nan[2, 5, 0] = np.nan
    cases = [
        (dict(keypoints=nan), r'bad\.npz, row 2: "keypoints" contains NaN'),
        (dict(keypoints=kpts[:, :16]), r'"keypoints" must have shape \(N, 17, 2\), got '
                                       r'\(3, 16, 2\)'),
        (dict(keypoints=kpts, keypoint_scores=np.ones((2, 17))),
         r'"keypoint_scores" has 2 rows, "keypoints" 3'),
        (dict(keypoints=kpts, sequence_ids=np.zeros(3)), r'"sequence_ids" must hold numbers '
                                                          r'\(iu\), got dtype float64'),
        (dict(keypoints=kpts, extra=np.zeros(3)), r"unknown array\(s\) \['extra'\]"),
        (dict(keypoints=kpts, scores=np.ones((3, 17)), keypoint_scores=np.ones((3, 17))),
         r'both "scores" and "keypoint_scores"'),
        (dict(keypoints=kpts[:0]), r'holds no pose \(N = 0\)'),
        (dict(poses=kpts), r"unknown array\(s\) \['poses'\]"),
        (dict(keypoints=kpts.astype(str)), r'"keypoints" must hold numbers'),
    ]
    for arrays, pattern in cases:
        path = _bad_npz(tmp_path, **arrays)
        with pytest.raises(ValueError, match=pattern) as excinfo:
            Keypoints2DDataset(ann_file=path, keypoint_format='h36m17')
        assert path in str(excinfo.value)


def test_empty_unreadable_and_declared_format_errors(tmp_path):
    empty = tmp_path / 'empty.json'
    empty.write_text('')
    with pytest.raises(ValueError, match=r'empty\.json is empty \(0 bytes\)'):
        Keypoints2DDataset(ann_file=str(empty))
    broken = tmp_path / 'broken.json'
    broken.write_text('[{"frame_id": 0,')
    with pytest.raises(ValueError, match=r'broken\.json: cannot read it as JSON'):
        Keypoints2DDataset(ann_file=str(broken))
    preds = _write_json(tmp_path, [dict(frame_id=0, instances=[_instance()])])
    with pytest.raises(ValueError, match=r"preds\.json: declared file_format='coco', but the "
                                         r'content is mmpose_preds'):
        Keypoints2DDataset(ann_file=preds, file_format='coco')
    with pytest.raises(ValueError, match=r"declared file_format='npz', but the content is not "
                                         r'an npz archive'):
        Keypoints2DDataset(ann_file=preds, file_format='npz', keypoint_format='coco17')
    npz = _write_npz(tmp_path, keypoints=H36M_POSE[None])
    with pytest.raises(ValueError, match=r'kpts\.npz is an npz: declare its joint order'):
        Keypoints2DDataset(ann_file=npz)
    with pytest.raises(ValueError, match=r'unknown file_format'):
        Keypoints2DDataset(ann_file=npz, file_format='csv')
    with pytest.raises(ValueError, match=r'unknown keypoint_format'):
        Keypoints2DDataset(ann_file=npz, keypoint_format='mpii16')
    with pytest.raises(FileNotFoundError):
        Keypoints2DDataset(ann_file=str(tmp_path / 'missing.json'))


def test_declared_joint_order_contradicted_by_the_data(tmp_path):
    coco = _write_npz(tmp_path, 'coco_order.npz', keypoints=np.stack([_pose(i) for i in
                                                                       range(4)]))
    with pytest.raises(ValueError, match=r'coco_order\.npz: the keypoints do not look like '
                                         r'Human3\.6M-17: 4 of 4'):
        Keypoints2DDataset(ann_file=coco, keypoint_format='h36m17')
    h36m = _write_npz(tmp_path, 'h36m_order.npz',
                      keypoints=np.stack([_pose(i, coco=False) for i in range(4)]))
    with pytest.raises(ValueError, match=r'h36m_order\.npz: the keypoints do not look like '
                                         r'COCO-17'):
        Keypoints2DDataset(ann_file=h36m, keypoint_format='coco17')
    # Human3.6M-17 rows written into an MMPose predictions file (COCO-17 by convention).
    preds = _write_json(tmp_path, [dict(frame_id=0, instances=[dict(
        keypoints=H36M_POSE.tolist())])], 'h36m_preds.json')
    with pytest.raises(ValueError, match=r'h36m_preds\.json: the keypoints do not look like '
                                         r'COCO-17'):
        Keypoints2DDataset(ann_file=preds)
    assert len(Keypoints2DDataset(ann_file=preds, check_format=False, min_keypoints=0)) == 1


def test_with_next_needs_temporal_pairs(tmp_path):
    npz = _write_npz(tmp_path, keypoints=H36M_POSE[None].repeat(2, 0))
    with pytest.raises(ValueError, match=r'with_next=True needs temporal pairs, but .*kpts\.npz '
                                         r'\(npz\) has no time information'):
        Keypoints2DDataset(ann_file=npz, keypoint_format='h36m17', with_next=True)
    lone = _write_npz(tmp_path, 'lone.npz', keypoints=H36M_POSE[None].repeat(2, 0),
                      sequence_ids=np.array([0, 1]))
    with pytest.raises(ValueError, match=r'no two kept rows of .*lone\.npz are consecutive'):
        Keypoints2DDataset(ann_file=lone, keypoint_format='h36m17', with_next=True)


# --------------------------------------------------------------------------- test mode
def _gt(n, offset=0.0):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 17, 3)) + offset


def test_test_mode_refused_without_ground_truth(tmp_path):
    path = _write_json(tmp_path, [dict(frame_id=0, instances=[_instance()])])
    with pytest.raises(ValueError, match=r'has no 3D ground truth, so it cannot serve '
                                         r'test_mode=True .*gt_file='):
        Keypoints2DDataset(ann_file=path, test_mode=True)


def test_test_mode_with_npz_3d_and_gt_file(tmp_path):
    kpts = np.stack([_pose(i, coco=False) for i in range(3)])
    k3d = _gt(3, offset=5.0)
    path = _write_npz(tmp_path, keypoints=kpts, keypoints_3d=k3d)
    ds = Keypoints2DDataset(ann_file=path, keypoint_format='h36m17', test_mode=True)
    np.testing.assert_allclose(ds.arrays['keypoints_3d'], k3d - k3d[:, :1], atol=1e-5)
    sample = ds.__getitems__([1])['data_samples'][0]
    assert sample.metainfo['target_img_path'] == ['own_all.cam0_000001.jpg']
    # Training mode: the 3D never leaves the dataset.
    assert 'keypoints_3d' not in Keypoints2DDataset(ann_file=path,
                                                    keypoint_format='h36m17').arrays
    frames = [dict(frame_id=f, instances=[_instance(f, track_id=2)]) for f in range(3)]
    preds = _write_json(tmp_path, frames)
    gt = _write_npz(tmp_path, 'gt.npz', keypoints_3d=k3d, sequence_ids=np.full(3, 2),
                    img_paths=np.array([f'mocap_walk.cam0_{i:06d}.jpg' for i in range(3)]))
    ds = Keypoints2DDataset(ann_file=preds, gt_file=gt, test_mode=True)
    np.testing.assert_allclose(ds.arrays['keypoints_3d'], k3d - k3d[:, :1], atol=1e-5)
    assert ds.arrays['img_paths'][2] == 'mocap_walk.cam0_000002.jpg'


def test_gt_file_errors(tmp_path):
    frames = [dict(frame_id=f, instances=[_instance(f, track_id=2)]) for f in range(3)]
    preds = _write_json(tmp_path, frames)
    cases = [
        (dict(keypoints_3d=_gt(2)), r'"keypoints_3d" has 2 rows but .*preds\.json holds 3'),
        (dict(keypoints_3d=_gt(3), sequence_ids=np.array([2, 2, 3])),
         r'gt\.npz, row 2: sequence id 3 is not that of .*frame 2 \(entry 2\), instance 0 \(2\)'),
        (dict(keypoints_3d=_gt(3), cameras=np.zeros(3)), r"unknown array\(s\) \['cameras'\]"),
        (dict(sequence_ids=np.full(3, 2)), r'has no "keypoints_3d" array'),
    ]
    for arrays, pattern in cases:
        gt = _write_npz(tmp_path, 'gt.npz', **arrays)
        with pytest.raises(ValueError, match=pattern):
            Keypoints2DDataset(ann_file=preds, gt_file=gt, test_mode=True)
    npz = _write_npz(tmp_path, 'own3d.npz', keypoints=H36M_POSE[None], keypoints_3d=_gt(1))
    gt = _write_npz(tmp_path, 'gt1.npz', keypoints_3d=_gt(1))
    with pytest.raises(ValueError, match=r'holds keypoints_3d and gt_file=.* is given too'):
        Keypoints2DDataset(ann_file=npz, keypoint_format='h36m17', gt_file=gt)


# --------------------------------------------------------------------------- training
def _mocap_streams():
    """Real 2D of two clips (Human3.6M-17 pixels), their 3D, and one sequence id per stream."""
    ds = MocapProjectionDataset(split='test', clips=['walk', 'run'])
    nxt = ds.arrays['next_index']
    seq = np.concatenate([[0], np.cumsum(nxt[:-1] < 0)])
    return ds.arrays['keypoints_2d'], ds.arrays['keypoints_3d'], seq


def _coco_from_h36m(h36m):
    """Approximate COCO-17 poses from Human3.6M-17 2D (face around the neck/nose joint)."""
    coco = np.zeros_like(h36m)
    for h, c in {1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 11: 5, 12: 7, 13: 9, 14: 6, 15: 8,
                 16: 10}.items():
        coco[:, c] = h36m[:, h]
    nose, top = h36m[:, 9], h36m[:, 10]
    side = (h36m[:, 11] - h36m[:, 14]) * 0.15
    up = (top - nose) * 0.3
    coco[:, 0] = nose
    coco[:, 1], coco[:, 2] = nose + up + side, nose + up - side
    coco[:, 3], coco[:, 4] = nose + 0.5 * up + 2 * side, nose + 0.5 * up - 2 * side
    return coco


def _training_file(tmp_path, file_format):
    """``(dataset config, rows)`` of real mocap 2D written in ``file_format``."""
    h36m, k3d, seq = _mocap_streams()
    coco = _coco_from_h36m(h36m)
    if file_format == 'npz':
        path = _write_npz(tmp_path, 'train.npz', keypoints=h36m, sequence_ids=seq)
        return dict(ann_file=path, keypoint_format='h36m17'), len(h36m)
    if file_format == 'mmpose_preds':
        doc = [dict(frame_id=i, instances=[dict(keypoints=k.tolist(), track_id=int(s))])
               for i, (k, s) in enumerate(zip(coco, seq))]
        return dict(ann_file=_write_json(tmp_path, doc, 'train.json')), len(h36m)
    vis = np.full((len(coco), 17, 1), 2.0)
    images = [dict(id=i, file_name=f'{i}.jpg', vid_id=int(s), frame_id=i)
              for i, s in enumerate(seq)]
    anns = [dict(id=i, image_id=i, keypoints=np.concatenate([k, v], 1).ravel().tolist())
            for i, (k, v) in enumerate(zip(coco, vis))]
    return dict(ann_file=_coco_file(tmp_path, anns, images, 'train_coco.json')), len(h36m)


def _train_two_iterations(tmp_path, dataset, rows, config=None, val_dataset=None):
    from mmengine.runner import Runner
    cfg = tiny_cfg(str(tmp_path / 'work'), max_epochs=1, **({} if config is None else
                                                            dict(config=config)))
    cfg.train_dataloader.dataset = dataset
    cfg.train_dataloader.batch_size = math.ceil(rows / 2)  # one epoch = 2 iterations
    if val_dataset is not None:
        cfg.val_dataloader.dataset = val_dataset
        cfg.test_dataloader = cfg.val_dataloader
    runner = Runner.from_cfg(cfg)
    assert isinstance(runner.train_dataloader.dataset, Keypoints2DDataset)
    runner.train()
    assert runner.iter == 2
    return runner


@pytest.mark.parametrize('file_format', ['mmpose_preds', 'coco', 'npz'])
def test_two_iterations_temporal_config(tmp_path, file_format):
    dataset, rows = _training_file(tmp_path, file_format)
    dataset = dict(type='Keypoints2DDataset', with_next=True, **dataset)
    runner = _train_two_iterations(tmp_path, dataset, rows, config=TDISC_CONFIG)
    ds = runner.train_dataloader.dataset
    assert ds.file_format == file_format and len(ds) == rows
    assert (ds.arrays['next_index'] >= 0).sum() == rows - 4  # 2 clips x 2 test cameras
    loss = runner.message_hub.get_scalar('train/loss_tdisc').current()
    assert math.isfinite(loss)


def test_two_iterations_base_config_with_own_test_set(tmp_path):
    h36m, k3d, seq = _mocap_streams()
    path = _write_npz(tmp_path, 'train.npz', keypoints=h36m, keypoint_scores=np.full(
        h36m.shape[:2], 0.9), sequence_ids=seq, keypoints_3d=k3d)
    dataset = dict(type='Keypoints2DDataset', ann_file=path, keypoint_format='h36m17')
    runner = _train_two_iterations(tmp_path, dataset, len(h36m),
                                   val_dataset=dict(dataset, test_mode=True))
    metrics = runner.test()
    assert 0 < metrics['MPJPE'] < 2.0 and 'MPJPE_all' in metrics
