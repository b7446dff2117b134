"""``ChiralityRate`` metric, its report line, its config entries and ``apis.chirality_rate``."""
import glob
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

from mmunsup3d.apis import chirality_rate
from mmunsup3d.evaluation import ChiralityRate, format_chirality_rate, format_mpjpe_results

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PYBULLET_BASE = osp.join(REPO, 'configs', '_base_', 'datasets', 'pybullet_mocap.py')


def _standing_pose() -> np.ndarray:
    """A Human3.6M-17 pose in camera coordinates (x right, y down, z forward, metres).

    The person faces the camera, so their left side is at +x and their front towards -z; both
    knees are bent forwards, i.e. towards the camera (-z).
    """
    p = np.zeros((17, 3))
    p[0] = (0.0, 0.0, 0.0)                                  # pelvis
    p[1], p[2], p[3] = (-0.1, 0, 0), (-0.1, 0.4, -0.1), (-0.1, 0.8, 0)  # right leg
    p[4], p[5], p[6] = (0.1, 0, 0), (0.1, 0.4, -0.1), (0.1, 0.8, 0)     # left leg
    p[7], p[8], p[9], p[10] = (0, -0.25, 0), (0, -0.5, 0), (0, -0.6, -0.05), (0, -0.75, 0)
    p[11], p[12], p[13] = (0.15, -0.5, 0), (0.2, -0.25, 0), (0.2, 0.0, 0)    # left arm
    p[14], p[15], p[16] = (-0.15, -0.5, 0), (-0.2, -0.25, 0), (-0.2, 0.0, 0)  # right arm
    return p


def _mirror(pose: np.ndarray) -> np.ndarray:
    """Depth mirror: z -> -z (what a depth-ambiguous lifter can converge to)."""
    return pose * np.array([1.0, 1.0, -1.0])


def _batch_3_correct_1_mirrored() -> np.ndarray:
    """``(4, 17, 3)``: the pose, turned 90 deg about the vertical, scaled and shifted, mirrored.

    Rotation, scale and translation keep the handedness, so only the last pose is mirrored.
    """
    pose = _standing_pose()
    turn = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # about the y axis
    return np.stack([pose, pose @ turn.T, 2.5 * pose + np.array([0.3, -0.2, 4.0]),
                     _mirror(pose)])


def _sample(keypoints: np.ndarray) -> dict:
    """A data sample as MMEngine's Evaluator hands it to a metric (``to_dict()`` output)."""
    return dict(pred_instances=dict(keypoints=keypoints))


def _rate(metric: ChiralityRate, *keypoints: np.ndarray) -> dict:
    metric.process({}, [_sample(k) for k in keypoints])
    return metric.compute_metrics(metric.results)


# --------------------------------------------------------------------------- metric
def test_correct_and_mirrored_pose():
    pose = _standing_pose()
    assert _rate(ChiralityRate(), pose[None]) == {'chirality_rate': 0.0}
    assert _rate(ChiralityRate(), _mirror(pose)[None]) == {'chirality_rate': 1.0}


def test_three_correct_one_mirrored_is_a_quarter():
    batch = _batch_3_correct_1_mirrored()
    assert _rate(ChiralityRate(), batch) == {'chirality_rate': 0.25}
    # (1, T, K, 3), as MMPose's lifters predict, and poses spread over several samples and
    # process() calls give the same fraction.
    assert _rate(ChiralityRate(), batch[None]) == {'chirality_rate': 0.25}
    metric = ChiralityRate()
    metric.process({}, [_sample(batch[:1]), _sample(batch[None, 1:3])])
    metric.process({}, [_sample(batch[3:])])
    assert metric.compute_metrics(metric.results) == {'chirality_rate': 0.25}


def test_prediction_only_and_skeleton_arguments():
    batch = _batch_3_correct_1_mirrored()
    # Ground truth (here: all mirrored) is never read.
    metric = ChiralityRate()
    metric.process({}, [dict(pred_instances=dict(keypoints=batch),
                             gt_instances=dict(lifting_target=_mirror(batch)))])
    assert metric.compute_metrics(metric.results)['chirality_rate'] == 0.25
    # Another up joint (head top, still above the pelvis) gives the same verdicts.
    assert _rate(ChiralityRate(up_joint='head_top'), batch) == {'chirality_rate': 0.25}


def test_metric_errors():
    with pytest.raises(ValueError, match='no joint named'):
        ChiralityRate(up_joint='chest')
    with pytest.raises(ValueError, match='16 joint names but 17 parents'):
        ChiralityRate(keypoint_names=['j'] * 16)
    metric = ChiralityRate()
    with pytest.raises(ValueError, match=r'got \(4, 16, 3\)'):
        metric.process({}, [_sample(np.zeros((4, 16, 3)))])
    with pytest.raises(ValueError, match=r'\(T, 17, 3\) or \(1, T, 17, 3\), got \(2, 4, 17, 3\)'):
        metric.process({}, [_sample(np.zeros((2, 4, 17, 3)))])
    with pytest.raises(KeyError, match='data sample 1 has no pred_instances.keypoints'):
        metric.process({}, [_sample(np.zeros((1, 17, 3))), dict(gt_instances={})])
    with pytest.raises(ValueError, match='no predicted poses'):
        ChiralityRate().compute_metrics([])
    with pytest.raises(ValueError, match='no predicted poses'):
        _rate(ChiralityRate(), np.zeros((0, 17, 3)))
    bad = _batch_3_correct_1_mirrored()
    bad[1, 3, 0] = np.nan
    bad[2, 0, 2] = np.inf
    with pytest.raises(ValueError, match=r'2 of 5 predicted pose\(s\) contain NaN or inf'):
        _rate(ChiralityRate(), bad, _standing_pose()[None])


def test_embedded_ground_truth_is_correctly_handed():
    """Camera-frame mocap ground truth scores a few percent; its depth mirror nearly all."""
    from mmunsup3d.datasets import MocapProjectionDataset
    gt = MocapProjectionDataset(split='test').arrays['keypoints_3d']
    assert len(gt) > 100
    rate = _rate(ChiralityRate(), gt)['chirality_rate']
    mirrored = _rate(ChiralityRate(), _mirror(gt))['chirality_rate']
    assert rate < 0.1
    assert mirrored > 0.9
    # Every pose with non-zero handedness flips side under the mirror.
    assert rate + mirrored == pytest.approx(1.0)


# --------------------------------------------------------------------------- configs
def test_evaluator_from_the_pybullet_config_reports_the_rate():
    from mmengine.evaluator import Evaluator
    from mmengine.structures import InstanceData
    from mmunsup3d.datasets import MocapProjectionDataset
    cfg = Config.fromfile(PYBULLET_BASE)
    evaluator = Evaluator(cfg.val_evaluator)
    dataset = MocapProjectionDataset(split='test', **cfg.mocap_split)
    batch = dataset.__getitems__(list(range(8)))
    preds = []
    for i, sample in enumerate(batch['data_samples']):
        pose = sample.gt_instances.lifting_target  # (1, 17, 3) ground truth as prediction
        pose = _mirror(pose) if i < 2 else pose
        sample.pred_instances = InstanceData(keypoints=pose.astype(np.float32))
        preds.append(pose[0])
    evaluator.process(batch['data_samples'], batch)
    metrics = evaluator.evaluate(8)
    assert {'MPJPE', 'P-MPJPE', 'N-MPJPE', 'chirality_rate'} <= set(metrics)
    assert metrics['chirality_rate'] == pytest.approx(chirality_rate(np.stack(preds)))
    assert metrics['chirality_rate'] >= 0.25 - 1e-9  # the two mirrored ones at least


def _evaluator_types(cfg: Config, key: str) -> list:
    return [e['type'] for e in cfg[key]]


def test_every_unsup3d_config_evaluates_the_rate():
    paths = sorted(glob.glob(osp.join(REPO, 'configs', 'unsup3d', '*.py'))) + [
        osp.join(REPO, 'configs', 'unsup3d_h36m.py'), PYBULLET_BASE]
    h36m = [p for p in paths if 'h36m' in osp.basename(p)]
    assert len(h36m) >= 5
    for path in paths:
        cfg = Config.fromfile(path)
        for key in ('val_evaluator', 'test_evaluator'):
            assert _evaluator_types(cfg, key).count('ChiralityRate') == 1, (path, key)
            assert _evaluator_types(cfg, key).count('MPJPE') == 3, (path, key)


# --------------------------------------------------------------------------- report
def test_format_chirality_rate():
    assert format_chirality_rate({'chirality_rate': 0.031}) == \
        'chirality rate (mirror-handed poses, label-free): 3.1 %'
    assert format_chirality_rate({'chirality_rate': np.float64(0.25)}) == \
        'chirality rate (mirror-handed poses, label-free): 25.0 %'
    assert format_chirality_rate({'chirality_rate': 1.0}).endswith(': 100.0 %')
    assert format_chirality_rate({'MPJPE': 0.05}) == ''


def test_mpjpe_table_ignores_the_chirality_rate():
    metrics = {'MPJPE': 0.05, 'MPJPE_walk': 0.04, 'P-MPJPE': 0.03, 'P-MPJPE_walk': 0.02,
               'chirality_rate': 0.25}
    lines = format_mpjpe_results(metrics).splitlines()
    assert [line.split()[0] for line in lines[2:]] == ['walk', 'ALL']
    assert lines[2].split() == ['walk', '20.0', '40.0']
    assert lines[3].split() == ['ALL', '30.0', '50.0']
    assert format_mpjpe_results(metrics) == format_mpjpe_results(
        {k: v for k, v in metrics.items() if k != 'chirality_rate'})


# --------------------------------------------------------------------------- api
def test_api_chirality_rate():
    batch = _batch_3_correct_1_mirrored()
    assert chirality_rate(batch) == 0.25
    assert chirality_rate(batch.tolist()) == 0.25
    assert chirality_rate(_mirror(batch)) == 0.75
    assert isinstance(chirality_rate(batch), float)


def test_api_chirality_rate_errors():
    with pytest.raises(ValueError, match=r'shape \(N, 17, 3\).*got \(17, 3\)'):
        chirality_rate(_standing_pose())
    with pytest.raises(ValueError, match=r'got \(2, 17, 2\)'):
        chirality_rate(np.zeros((2, 17, 2)))
    with pytest.raises(ValueError, match=r'no pose \(N = 0\)'):
        chirality_rate(np.zeros((0, 17, 3)))
    bad = _batch_3_correct_1_mirrored()
    bad[2, 5, 1] = np.nan
    bad[3, 0, 0] = -np.inf
    with pytest.raises(ValueError, match=r'NaN or inf in 2 of 4 pose\(s\) \(first: pose 2\)'):
        chirality_rate(bad)
    with pytest.raises(ValueError, match='real numbers.*bool'):
        chirality_rate(np.zeros((1, 17, 3), dtype=bool))
