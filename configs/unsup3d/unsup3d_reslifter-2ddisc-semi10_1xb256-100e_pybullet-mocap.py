# Semi-supervised: the Unsup3D config plus a scale-aligned 3D loss on 10 % of the training rows
# (chosen once with `labelled_seed`); the other 90 % are used through the unsupervised losses
# only. Otherwise identical to unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py.
_base_ = ['./unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py']

model = dict(sup_loss=dict(type='ScaleAlignedMPJPELoss', loss_weight=1.0))
train_dataloader = dict(dataset=dict(with_3d=True, labelled_fraction=0.1, labelled_seed=0))
