# Leave-motion-out variant of ../unsup3d_reslifter-2ddisc-bodyaug_1xb256-100e_pybullet-mocap.py:
# Unsup3D with the 2D discriminator, the chirality prior and body-proportion augmentation.
# Fold 0 here; run all folds with tools/misc/run_motion_folds.sh (see the 2ddisc LMO config).
_base_ = ['../unsup3d_reslifter-2ddisc-bodyaug_1xb256-100e_pybullet-mocap.py']

lmo_split = dict(protocol='leave-motion-out', fold=0, num_folds=5)
# All three loaders (the base's test_dataloader is a copy of its val_dataloader).
train_dataloader = dict(dataset=lmo_split)
val_dataloader = dict(dataset=lmo_split)
test_dataloader = dict(dataset=lmo_split)
