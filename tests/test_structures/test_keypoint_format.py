"""``check_keypoint_format``: COCO-17 given as Human3.6M-17 (and the reverse) is refused, while
real poses of the declared layout (the embedded mocap in both layouts, with acrobatics and
outliers) pass."""
import json
import os.path as osp

import numpy as np
import pytest

from mmunsup3d.structures.keypoint_convert import (KEYPOINT_FORMATS, check_keypoint_format,
                                                    coco_to_h36m)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
COCO_JSON = osp.join(REPO, 'data', 'pybullet_mocap', 'coco17_synthetic_train.json')
PREDS_JSON = osp.join(REPO, 'demo', 'data', 'mmpose_preds_walk.json')
# Clips in which people stay upright: read in the wrong layout nearly every pose contradicts
# it. (Flips, cartwheels, rolls and get-ups are checked only in their right layout.)
UPRIGHT = ('walk', 'run', 'jump', 'kick', 'punch', 'dancea', 'danceb', 'spin', 'spinkick')


@pytest.fixture(scope='module')
def h36m_clips():
    """Human3.6M-17 2D of every mocap clip (train and test frames), as the dataset projects it;
    keyed by action name (the clip name without ``_``, as in the image names)."""
    from mmunsup3d.datasets import MocapProjectionDataset
    from mmunsup3d.datasets.mocap_dataset import DEFAULT_MOCAP
    with np.load(DEFAULT_MOCAP) as npz:
        names = [str(c) for c in npz['clip_names']]
    return {clip.replace('_', ''): np.concatenate([
        MocapProjectionDataset(split=split, clips=[clip]).arrays['keypoints_2d']
        for split in ('train', 'test')]).astype(np.float64) for clip in names}


@pytest.fixture(scope='module')
def coco_synthetic():
    """``mocap_to_coco.py``'s COCO-17 file: keypoints, scores and the clip of each pose."""
    with open(COCO_JSON) as f:
        doc = json.load(f)
    clip_of = {im['id']: im['file_name'].split('.')[0].replace('mocap_', '').replace('_', '')
               for im in doc['images']}
    anns = doc['annotations']
    kpts = np.array([a['keypoints'] for a in anns], float).reshape(-1, 17, 3)[..., :2]
    scores = np.array([a['keypoint_scores'] for a in anns], float)
    clips = np.array([clip_of[a['image_id']] for a in anns])
    return kpts, scores, clips


def test_mocap_h36m_passes_as_h36m_and_fails_as_coco(h36m_clips):
    assert set(UPRIGHT) <= set(h36m_clips)
    for clip, kpts in h36m_clips.items():
        check_keypoint_format(kpts, None, 'h36m17', source=clip)  # every clip, flips included
    for clip in UPRIGHT:
        with pytest.raises(ValueError, match=f'^{clip}: the keypoints do not look like COCO-17'):
            check_keypoint_format(h36m_clips[clip], None, 'coco17', source=clip)
    everything = np.concatenate(list(h36m_clips.values()))
    check_keypoint_format(everything, None, 'h36m17')
    with pytest.raises(ValueError, match='do not look like COCO-17'):
        check_keypoint_format(everything, None, 'coco17')


def test_mocap_coco_passes_as_coco_and_fails_as_h36m(coco_synthetic):
    kpts, scores, clips = coco_synthetic
    check_keypoint_format(kpts, scores, 'coco17', source=COCO_JSON)
    with pytest.raises(ValueError) as info:
        check_keypoint_format(kpts, scores, 'h36m17', source=COCO_JSON)
    msg = str(info.value)
    assert msg.startswith(f'{COCO_JSON}: the keypoints do not look like Human3.6M-17')
    assert 'the head (joints 9, 10) below the pelvis and hips (0, 1, 4)' in msg
    assert 'another joint order (COCO-17)' in msg
    for clip in np.unique(clips):
        check_keypoint_format(kpts[clips == clip], scores[clips == clip], 'coco17', source=clip)
    for clip in UPRIGHT:
        with pytest.raises(ValueError, match='do not look like Human3.6M-17'):
            check_keypoint_format(kpts[clips == clip], scores[clips == clip], 'h36m17')
    # Converted to Human3.6M-17 by coco_to_h36m it is right as Human3.6M-17, wrong as COCO.
    h36m, h36m_scores = coco_to_h36m(kpts, scores)
    check_keypoint_format(h36m, h36m_scores, 'h36m17')
    with pytest.raises(ValueError, match='do not look like COCO-17'):
        check_keypoint_format(h36m, h36m_scores, 'coco17')


def test_mmpose_predictions_file():
    """``mocap_to_mmpose_preds.py``'s demo file: 6 frames; the one with an occluded wrist
    (score 0.08) does not vote when read as Human3.6M-17 (joint 9 is then that wrist)."""
    with open(PREDS_JSON) as f:
        frames = json.load(f)
    kpts = np.array([i['keypoints'] for fr in frames for i in fr['instances']], float)
    scores = np.array([i['keypoint_scores'] for fr in frames for i in fr['instances']], float)
    check_keypoint_format(kpts, scores, 'coco17', source=PREDS_JSON)
    with pytest.raises(ValueError, match=r'5 of 5 confident poses checked contradict'):
        check_keypoint_format(kpts, scores, 'h36m17', source=PREDS_JSON)
    check_keypoint_format(*coco_to_h36m(kpts, scores), 'h36m17')


def _flip(poses: np.ndarray) -> np.ndarray:
    """Upside down in the image (y mirrored about each pose's centre)."""
    out = poses.copy()
    centre = out[..., 1].mean(-1, keepdims=True)
    out[..., 1] = 2 * centre - out[..., 1]
    return out


def test_outliers_do_not_fire_but_a_majority_does(h36m_clips):
    walk = h36m_clips['walk']
    rng = np.random.default_rng(0)
    mixed = walk.copy()
    few = rng.choice(len(walk), len(walk) // 5, replace=False)
    mixed[few] = _flip(walk[few])                    # 20 % upside down
    mixed[few[:3]] = rng.uniform(0, 1000, (3, 17, 2))  # and a few random scatters
    check_keypoint_format(mixed, None, 'h36m17')
    most = _flip(walk)
    most[:len(walk) // 10] = walk[:len(walk) // 10]  # 90 % upside down: a clear majority
    with pytest.raises(ValueError, match='upside down'):
        check_keypoint_format(most, None, 'h36m17')


def test_only_confident_poses_vote(h36m_clips, coco_synthetic):
    kpts, scores, _ = coco_synthetic
    # COCO read as Human3.6M-17, but no pose is confident: nothing to judge by.
    check_keypoint_format(kpts, np.zeros_like(scores), 'h36m17')
    # One unreliable joint that the relations use takes the pose out of the vote.
    flipped = _flip(h36m_clips['walk'])
    with pytest.raises(ValueError):
        check_keypoint_format(flipped, None, 'h36m17')
    sc = np.ones(flipped.shape[:2])
    sc[:, 10] = 0.1  # head top untrusted in every pose
    check_keypoint_format(flipped, sc, 'h36m17')
    with pytest.raises(ValueError):  # trusted from 0.05 on: they vote again
        check_keypoint_format(flipped, sc, 'h36m17', score_thr=0.05)


def test_lying_poses_do_not_vote(h36m_clips):
    walk = h36m_clips['walk']
    lying = walk.copy()
    lying[..., 1] = lying[..., 1].mean(-1, keepdims=True) + 0.01 * (
        lying[..., 1] - lying[..., 1].mean(-1, keepdims=True))  # squashed flat
    check_keypoint_format(lying, None, 'coco17')  # too flat to tell either layout
    check_keypoint_format(lying, None, 'h36m17')


def test_sampling_and_arguments(h36m_clips):
    walk = h36m_clips['walk']
    many = np.tile(walk, (400, 1, 1))  # 25 600 poses: a sample of max_poses is looked at
    check_keypoint_format(many, None, 'h36m17', max_poses=50)
    with pytest.raises(ValueError, match='50 of 50 confident poses'):
        check_keypoint_format(many, None, 'coco17', max_poses=50)
    check_keypoint_format(np.zeros((0, 17, 2)), None, 'h36m17')  # nothing to check
    with pytest.raises(ValueError, match="unknown keypoint_format 'mpii'"):
        check_keypoint_format(walk, None, 'mpii', source='x.json')
    with pytest.raises(ValueError, match=r'shape \(N, 17, 2\)'):
        check_keypoint_format(walk[:, :16], None, 'h36m17')
    with pytest.raises(ValueError, match='scores must have shape'):
        check_keypoint_format(walk, np.ones((len(walk), 16)), 'h36m17')
    assert set(KEYPOINT_FORMATS) == {'coco17', 'h36m17'}
    # NaN rows do not vote (and do not break the check).
    nan = walk.copy()
    nan[::2] = np.nan
    check_keypoint_format(nan, None, 'h36m17')
    with pytest.raises(ValueError):
        check_keypoint_format(nan, None, 'coco17')
