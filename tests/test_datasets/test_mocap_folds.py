"""Leave-motion-out protocol of MocapProjectionDataset: folds, splits, errors, configs, script."""
import glob
import os
import os.path as osp
import subprocess

import numpy as np
import pytest
from mmengine.config import Config

from mmunsup3d.datasets import MOCAP_MOTION_GROUPS, MocapProjectionDataset, motion_folds

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LMO = 'leave-motion-out'
# Frame counts of the shipped clips (data/pybullet_mocap/h36m17_mocap.npz).
FRAMES = dict(backflip=88, cartwheel=136, crawl=147, dance_a=81, dance_b=127,
              getup_facedown=152, getup_faceup=189, jump=89, kick=77, punch=107, roll=101,
              run=40, spin=221, spinkick=65, walk=64)
# Hand-computed greedy assignment. Groups by size: getup 341, spin 221, dance 208, crawl 147,
# kick+spinkick 142, cartwheel 136, punch 107, run+walk 104, roll 101, jump 89, backflip 88.
# The first five fill folds 0-4; then cartwheel -> fold 4 (142 -> 278), punch -> 3 (147 -> 254),
# run+walk -> 2 (208 -> 312), roll -> 1 (221 -> 322), jump -> 3 (254 -> 343),
# backflip -> 4 (278 -> 366).
FOLDS = [
    ['getup_facedown', 'getup_faceup'],
    ['roll', 'spin'],
    ['dance_a', 'dance_b', 'run', 'walk'],
    ['crawl', 'jump', 'punch'],
    ['backflip', 'cartwheel', 'kick', 'spinkick'],
]
FOLD_FRAMES = [341, 322, 312, 343, 366]


def actions(ds: MocapProjectionDataset) -> set:
    """Clip names (underscores dropped, as in img_paths) of a dataset's rows."""
    return {p[len('mocap_'):].split('.', 1)[0] for p in ds.arrays['img_paths']}


def squash(names) -> set:
    return {n.replace('_', '') for n in names}


def by_path(ds: MocapProjectionDataset, key: str = 'keypoints_2d') -> dict:
    return dict(zip(ds.arrays['img_paths'], ds.arrays[key]))


@pytest.fixture(scope='module')
def tail_sets():
    return {s: MocapProjectionDataset(split=s) for s in ('train', 'test')}


@pytest.fixture(scope='module')
def lmo_sets():
    return {(f, s): MocapProjectionDataset(split=s, protocol=LMO, fold=f)
            for f in range(5) for s in ('train', 'test')}


# --------------------------------------------------------------------- motion_folds
def test_default_fold_table_is_the_hand_computed_one():
    folds = motion_folds(FRAMES, MOCAP_MOTION_GROUPS, 5)
    assert folds == FOLDS
    assert [sum(FRAMES[c] for c in f) for f in folds] == FOLD_FRAMES
    # Every clip in exactly one fold.
    flat = [c for f in folds for c in f]
    assert sorted(flat) == sorted(FRAMES) and len(flat) == len(set(flat)) == 15


def test_motion_folds_ties_go_to_the_lowest_fold_and_by_name():
    # a and b tie on size: a (first by name) is placed first, into fold 0; c then ties
    # folds 0 and 1 (5 each) and goes to fold 0; d to the lighter fold 1.
    assert motion_folds({'b': 5, 'a': 5, 'c': 3, 'd': 2}, None, 2) == [['a', 'c'], ['b', 'd']]
    # A group moves as a whole and counts its total: {c, d} = 5 ties with a and b but its
    # first name "c" sorts last, so a -> 0, b -> 1, {c, d} -> 0.
    assert motion_folds({'a': 5, 'b': 5, 'c': 3, 'd': 2}, [['d', 'c']], 2) == \
        [['a', 'c', 'd'], ['b']]


def test_motion_folds_errors():
    with pytest.raises(ValueError, match='clip "kick" is in groups 0 and 1'):
        motion_folds(FRAMES, [['kick', 'spinkick'], ['kick', 'punch']], 5)
    with pytest.raises(ValueError, match='clip "run" is twice in group 0'):
        motion_folds(FRAMES, [['run', 'run']], 5)
    with pytest.raises(ValueError, match=r"group 0 \['walk', 'moonwalk'\] names clip\(s\) "
                                         r"\['moonwalk'\] that are not in the data"):
        motion_folds(FRAMES, [['walk', 'moonwalk']], 5)
    with pytest.raises(ValueError, match=r'num_folds must be in \[2, 11\].*got 1'):
        motion_folds(FRAMES, MOCAP_MOTION_GROUPS, 1)
    # 15 clips in 4 pairs: 11 groups, so 12 folds cannot all get one.
    with pytest.raises(ValueError, match=r'num_folds must be in \[2, 11\].*got 12'):
        motion_folds(FRAMES, MOCAP_MOTION_GROUPS, 12)
    assert len(motion_folds(FRAMES, MOCAP_MOTION_GROUPS, 11)) == 11
    with pytest.raises(ValueError, match='group 0 is empty'):
        motion_folds(FRAMES, [[]], 5)
    with pytest.raises(ValueError, match='clip_frames is empty'):
        motion_folds({}, None, 2)
    with pytest.raises(TypeError, match='got the string "run"'):
        motion_folds(FRAMES, ['run', 'walk'], 5)
    with pytest.raises(TypeError, match='num_folds must be an int, got 2.5'):
        motion_folds(FRAMES, None, 2.5)


# --------------------------------------------------------------------- dataset splits
def test_lmo_splits_hold_out_whole_folds(lmo_sets):
    all_clips = squash(FRAMES)
    seen_in_test = []
    for f in range(5):
        train, test = lmo_sets[f, 'train'], lmo_sets[f, 'test']
        assert test.held_out_clips == FOLDS[f] == train.held_out_clips
        assert (test.protocol, test.fold, test.num_folds) == (LMO, f, 5)
        assert actions(test) == squash(FOLDS[f])
        assert actions(train) == all_clips - squash(FOLDS[f])   # disjoint, and all the rest
        # Every frame: 2 test cameras on the held-out clips, 4 training cameras on the rest.
        assert len(test) == 2 * FOLD_FRAMES[f]
        assert len(train) == 4 * (sum(FRAMES.values()) - FOLD_FRAMES[f])
        assert test.test_mode and 'keypoints_3d' in test.arrays
        assert 'keypoints_3d' not in train.arrays  # unsupervised training: no 3D
        seen_in_test += sorted(actions(test))
    assert sorted(seen_in_test) == sorted(all_clips)  # each clip tested in exactly one fold


def test_lmo_respects_frame_step_and_sequence_ends():
    ds = MocapProjectionDataset(split='test', protocol=LMO, fold=0, frame_step=3)
    # ceil(152 / 3) + ceil(189 / 3) = 51 + 63 frames, through 2 cameras.
    assert len(ds) == 2 * (51 + 63)
    frames = sorted({int(p[-10:-4]) for p in ds.arrays['img_paths']
                     if p.startswith('mocap_getupfacedown.cam0_')})
    assert frames == list(range(0, 152, 3))
    # One sequence per clip and camera, each ending in -1.
    assert (ds.arrays['next_index'] == -1).sum() == 2 * 2


def test_clip_filter_intersects_without_moving_folds():
    ds = MocapProjectionDataset(split='test', protocol=LMO, fold=0,
                                clips=['walk', 'getup_faceup'])
    assert ds.held_out_clips == FOLDS[0]      # fold from all clips of the file
    assert actions(ds) == {'getupfaceup'} and len(ds) == 2 * 189
    tr = MocapProjectionDataset(split='train', protocol=LMO, fold=0,
                                clips=['walk', 'getup_faceup'])
    assert actions(tr) == {'walk'} and len(tr) == 4 * 64


def test_semi_supervised_lmo_labels_training_rows():
    ds = MocapProjectionDataset(split='train', protocol=LMO, fold=1, with_3d=True,
                                labelled_fraction=0.1)
    assert len(ds) == 4 * (1684 - 322)
    assert ds.arrays['has_3d'].sum() == round(0.1 * len(ds))


def test_tail_protocol_is_unchanged(tail_sets):
    # Passing the new arguments with protocol='tail' changes nothing.
    for split, ref in tail_sets.items():
        ds = MocapProjectionDataset(split=split, protocol='tail', fold=3, num_folds=4,
                                    motion_groups=[['run', 'jump']])
        assert sorted(ds.arrays) == sorted(ref.arrays)
        for key, arr in ref.arrays.items():
            assert arr.dtype == ds.arrays[key].dtype
            assert np.array_equal(arr, ds.arrays[key]), (split, key)
        assert ds.held_out_clips == [] and ref.protocol == 'tail'
    # Sizes (hand-computed: the tails round(0.2 T) sum to 335 frames; 10-frame gaps) and
    # 2D sums recorded with the code before the leave-motion-out protocol existed. The same on
    # any CPU: the 2D is computed in float64 and stored as float32, so other libm / SIMD kernels
    # change no stored value (measured: NumPy's and OpenBLAS's kernels switched, or sin/cos off
    # by up to 1000 ulps, change none of the 163,064 training values; one flipped float32 value
    # moves the train sum by 7e-13, within rtol), while moving one joint by 0.01 px moves it by
    # 1e-10.
    train, test = tail_sets['train'], tail_sets['test']
    assert len(test) == 2 * 335 and len(train) == 4 * (1684 - 335 - 15 * 10)
    assert np.isclose(train.arrays['keypoints_2d'].sum(dtype=np.float64), 86683767.76654053,
                      rtol=1e-12, atol=0)
    assert np.isclose(test.arrays['keypoints_2d'].sum(dtype=np.float64), 11533047.55873108,
                      rtol=1e-12, atol=0)


def test_cameras_are_the_same_in_both_protocols(tail_sets, lmo_sets):
    # Fold 0 holds out the getup clips. Training frames of the other clips, and the tail frames
    # of the getup clips, exist in both protocols under the same name (clip, camera, frame):
    # the same world pose through the same camera must give the same 2D (and 3D).
    # Hand-computed overlaps: tail training frames T - round(0.2 T) - 10 of the 13 other clips
    # (1199 in all, minus getup_facedown's 112 and getup_faceup's 141) through 4 cameras; the
    # getup tails (30 + 38 frames) through 2 cameras.
    for split, expected in (('train', 4 * (1199 - 112 - 141)), ('test', 2 * (30 + 38))):
        tail, lmo = by_path(tail_sets[split]), by_path(lmo_sets[0, split])
        common = set(tail) & set(lmo)
        assert len(common) == expected, split
        for p in common:
            assert np.array_equal(tail[p], lmo[p]), p
    tail3d, lmo3d = (by_path(tail_sets['test'], 'keypoints_3d'),
                     by_path(lmo_sets[0, 'test'], 'keypoints_3d'))
    for p in set(tail3d) & set(lmo3d):
        assert np.array_equal(tail3d[p], lmo3d[p]), p


def test_dataset_errors():
    with pytest.raises(ValueError, match=r'unknown protocol "leave-one-out"; choose one of '
                                         r"\['tail', 'leave-motion-out'\]"):
        MocapProjectionDataset(protocol='leave-one-out')
    with pytest.raises(ValueError, match=r'fold must be in \[0, 5\) for num_folds=5, got 5'):
        MocapProjectionDataset(protocol=LMO, fold=5)
    with pytest.raises(ValueError, match=r'fold must be in \[0, 5\) for num_folds=5, got -1'):
        MocapProjectionDataset(protocol=LMO, fold=-1)
    with pytest.raises(ValueError, match='num_folds must be >= 2, got 1'):
        MocapProjectionDataset(protocol=LMO, fold=0, num_folds=1)
    with pytest.raises(TypeError, match='fold must be an int, got 0.5'):
        MocapProjectionDataset(protocol=LMO, fold=0.5)
    with pytest.raises(ValueError, match=r'num_folds must be in \[2, 11\].*got 12'):
        MocapProjectionDataset(protocol=LMO, num_folds=12)
    with pytest.raises(ValueError, match='clip "kick" is in groups 0 and 1'):
        MocapProjectionDataset(protocol=LMO, motion_groups=[['kick'], ['kick', 'punch']])
    with pytest.raises(ValueError, match=r"names clip\(s\) \['moonwalk'\]"):
        MocapProjectionDataset(protocol=LMO, motion_groups=[['moonwalk']])
    # The clip filter leaves nothing on the requested side.
    with pytest.raises(ValueError, match=r'test split of fold 0 \(protocol "leave-motion-out".*'
                                         r"clips=\['walk'\]"):
        MocapProjectionDataset(split='test', protocol=LMO, fold=0, clips=['walk'])
    with pytest.raises(ValueError, match=r'train split of fold 0 .*'
                                         r"clips=\['getup_faceup'\]"):
        MocapProjectionDataset(split='train', protocol=LMO, fold=0, clips=['getup_faceup'])
    # Unused by this protocol, and checked exactly as before.
    with pytest.raises(ValueError, match='test_fraction must be in'):
        MocapProjectionDataset(protocol=LMO, test_fraction=1.5)


# --------------------------------------------------------------------- configs and script
LMO_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'unsup3d', 'lmo', '*.py')))


def test_all_lmo_configs_exist():
    assert [osp.basename(p) for p in LMO_CONFIGS] == [
        'flatdepth_baseline_pybullet-mocap-lmo.py',
        'supervised_reslifter_1xb256-40e_pybullet-mocap-lmo.py',
        'unsup3d_reslifter-2ddisc-bodyaug_1xb256-100e_pybullet-mocap-lmo.py',
        'unsup3d_reslifter-2ddisc-semi10_1xb256-100e_pybullet-mocap-lmo.py',
        'unsup3d_reslifter-2ddisc-tdisc-betas05_1xb256-100e_pybullet-mocap-lmo.py',
        'unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-100e_pybullet-mocap-lmo.py',
        'unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-200e_pybullet-mocap-lmo.py',
        'unsup3d_reslifter-2ddisc-tdisc_1xb256-100e_pybullet-mocap-lmo.py',
        'unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap-lmo.py',
    ]


@pytest.mark.parametrize('path', LMO_CONFIGS, ids=osp.basename)
def test_lmo_config_sets_protocol_in_all_loaders(path):
    cfg = Config.fromfile(path)
    base = Config.fromfile(osp.join(osp.dirname(osp.dirname(path)),
                                    osp.basename(path).replace('-lmo.py', '.py')))
    for key, split in (('train_dataloader', 'train'), ('val_dataloader', 'test'),
                       ('test_dataloader', 'test')):
        ds = cfg[key].dataset
        assert (ds.protocol, ds.fold, ds.num_folds, ds.split) == (LMO, 0, 5, split), key
        # Everything else as in the method's own config.
        rest = {k: v for k, v in ds.items() if k not in ('protocol', 'fold', 'num_folds')}
        assert rest == dict(base[key].dataset), key
    assert cfg.model == base.model


def _stub(path: str, log: str) -> str:
    with open(path, 'w') as f:
        f.write(f'#!/usr/bin/env bash\necho "$0 $*" >> {log}\n')
    os.chmod(path, 0o755)
    return path


def test_fold_script_dispatches_each_fold(tmp_path):
    script = osp.join(REPO, 'tools', 'misc', 'run_motion_folds.sh')
    assert os.access(script, os.X_OK)
    log = tmp_path / 'calls.log'
    env = dict(os.environ, PYTHON=_stub(str(tmp_path / 'py'), log),
               RUN_SEEDS=_stub(str(tmp_path / 'seeds'), log))
    cfg = osp.join(REPO, 'configs', 'unsup3d', 'lmo',
                   'unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap-lmo.py')
    subprocess.run([script, cfg, 'ud', '0 3', '7'], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    flat = osp.join(REPO, 'configs', 'unsup3d', 'lmo', 'flatdepth_baseline_pybullet-mocap-lmo.py')
    subprocess.run([script, flat, 'fd', '2'], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    opts = 'train_dataloader.dataset.fold={f} val_dataloader.dataset.fold={f} ' \
           'test_dataloader.dataset.fold={f}'
    wd = 'work_dirs/ablation/fd_fold2'
    assert log.read_text().splitlines() == [
        f'{tmp_path}/seeds {cfg} ud_fold0 7 ' + opts.format(f=0),
        f'{tmp_path}/seeds {cfg} ud_fold3 7 ' + opts.format(f=3),
        f'{tmp_path}/py tools/test.py {flat} none --work-dir {wd} --out {wd}/metrics.json '
        '--cfg-options ' + opts.format(f=2),
    ]
    bad = subprocess.run([script, cfg, 'ud', '1 x'], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and 'fold "x" is not a non-negative integer' in bad.stderr
    assert len(log.read_text().splitlines()) == 3  # refused before fold 1 was started
