# Supervised reference: the same lifter and input normalisation, trained with the 3D ground
# truth of every training pose (scale-aligned 3D loss, since 2D normalisation removes scale).
# Same split and cameras as the unsupervised config; an upper bound, not an unsupervised result.
_base_ = ['./unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py']

model = dict(
    lifter=dict(dropout=0.0),
    discriminator=None,
    cycle_losses=[],
    flip=None,
    sup_loss=dict(type='ScaleAlignedMPJPELoss', loss_weight=1.0),
)
train_dataloader = dict(dataset=dict(with_3d=True, labelled_fraction=1.0))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4))
param_scheduler = [dict(type='ExponentialLR', gamma=0.97, by_epoch=True)]
model_wrapper_cfg = dict(_delete_=True, type='MMDistributedDataParallel',
                         broadcast_buffers=False)
max_epochs = 40
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
