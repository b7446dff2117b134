# Embedded default: the unsupervised lifter (Chen et al., CVPR 2019) trained on 2D projections
# of the pybullet motion capture, CPU-sized (width 512, so the fp16 checkpoint is < 5 MB).
# `make demo` runs exactly this config; results in configs/unsup3d/README.md.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/datasets/pybullet_mocap.py',
    '../_base_/models/unsup3d_reslifter_2ddisc.py',
]

max_epochs = 40
lifter_width = 512
model = dict(
    lifter=dict(width=lifter_width),
    discriminator=dict(width=512, num_blocks=3),
)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
train_dataloader = dict(batch_size=256)
default_hooks = dict(checkpoint=dict(interval=max_epochs), logger=dict(interval=20))
