# Embedded default: the unsupervised lifter (Chen et al., CVPR 2019) trained on 2D projections
# of the pybullet motion capture, CPU-sized: lifter width 512 (so the fp16 checkpoint is < 5 MB),
# discriminator 256 x 2 blocks with an R1 penalty, the paper's random cameras (azimuth ±140°,
# elevation ±20°), 100 epochs with LR x0.99 per epoch (the data is 4.8 k poses, so 100 epochs are
# about 1,900 iterations). `make demo` runs exactly this config; results in
# configs/unsup3d/README.md.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/datasets/pybullet_mocap.py',
    '../_base_/models/unsup3d_reslifter_2ddisc.py',
]

max_epochs = 100
model = dict(
    lifter=dict(width=512, num_blocks=4),
    discriminator=dict(width=256, num_blocks=2),
)
param_scheduler = dict(
    lifter=[dict(type='ExponentialLR', gamma=0.99, by_epoch=True)],
    discriminator=[dict(type='ExponentialLR', gamma=0.99, by_epoch=True)],
)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
train_dataloader = dict(batch_size=256)
default_hooks = dict(checkpoint=dict(interval=max_epochs), logger=dict(interval=19))
