# Ablation: geometric self-consistency only (2D + 3D cycle losses), no discriminator.
# Otherwise identical to unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py.
# Tests the paper's claim that self-consistency alone is not sufficient.
_base_ = ['./unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py']

model = dict(
    discriminator=None,  # and with it loss_adv and the R1 penalty
    # The paper's ablation row: the two consistency losses alone (no chirality prior).
    cycle_losses=[
        dict(type='ReprojectionConsistencyLoss', loss_weight=1.0),
        dict(type='RotationConsistencyLoss', loss_weight=1.0),
    ])
# One network: a plain optimizer wrapper and DDP wrapper suffice.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=2e-4, weight_decay=1e-4))
param_scheduler = [dict(type='ExponentialLR', gamma=0.99, by_epoch=True)]
model_wrapper_cfg = dict(_delete_=True, type='MMDistributedDataParallel',
                         broadcast_buffers=False)
