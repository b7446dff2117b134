# Leave-motion-out variant of ../unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-200e_pybullet-mocap.py
# (the recommended configuration: temporal discriminator, least-squares GAN, Adam betas
# (0.5, 0.9), 200 epochs). Whole clips are held out, related motions share a fold (see
# unsup3d_reslifter-2ddisc-tdisc_1xb256-100e_pybullet-mocap-lmo.py beside this file). Fold 0
# here; run all folds with tools/misc/run_motion_folds.sh, which overrides all three loaders.
_base_ = ['../unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-200e_pybullet-mocap.py']

lmo_split = dict(protocol='leave-motion-out', fold=0, num_folds=5)
# All three loaders: the base's `test_dataloader = val_dataloader` is a copy made when the
# base is parsed, so overriding val_dataloader alone would leave the test split on 'tail'.
train_dataloader = dict(dataset=lmo_split)
val_dataloader = dict(dataset=lmo_split)
test_dataloader = dict(dataset=lmo_split)
