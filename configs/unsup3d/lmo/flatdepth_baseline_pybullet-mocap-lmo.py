# Leave-motion-out variant of ../flatdepth_baseline_pybullet-mocap.py:
# the parameter-free flat-depth baseline (no training: tools/test.py <this config> none).
# Whole clips are held out: the test split is every frame of the held-out fold's clips (through
# the 2 test cameras), the training split every frame of all other clips (through the 4
# training cameras); related motions (dance_a/b, getup_*, kick/spinkick, run/walk) share a fold
# (MOCAP_MOTION_GROUPS, motion_folds in mmunsup3d/datasets/mocap_dataset.py). Fold 0 here; run
# all folds with tools/misc/run_motion_folds.sh, which overrides the fold of all three loaders.
_base_ = ['../flatdepth_baseline_pybullet-mocap.py']

lmo_split = dict(protocol='leave-motion-out', fold=0, num_folds=5)
# All three loaders: the base's `test_dataloader = val_dataloader` is a copy made when the
# base is parsed, so overriding val_dataloader alone would leave the test split on 'tail'.
train_dataloader = dict(dataset=lmo_split)
val_dataloader = dict(dataset=lmo_split)
test_dataloader = dict(dataset=lmo_split)
