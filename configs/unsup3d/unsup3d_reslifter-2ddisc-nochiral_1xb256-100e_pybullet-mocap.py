# Ablation: the paper's core model (2D discriminator) without the chirality prior that every
# other unsupervised config carries; the "+ 2D discriminator" row of configs/unsup3d/README.md.
_base_ = ['./unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py']

model = dict(cycle_losses=[
    dict(type='ReprojectionConsistencyLoss', loss_weight=1.0),
    dict(type='RotationConsistencyLoss', loss_weight=1.0),
])
