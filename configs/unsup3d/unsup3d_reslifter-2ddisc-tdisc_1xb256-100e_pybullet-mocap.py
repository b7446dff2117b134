# Unsup3D + the paper's temporal consistency: a second discriminator judges pairs of
# consecutive 2D poses (real: consecutive training frames of the same clip and camera; fake:
# both lifted frames seen through the same random camera). Otherwise identical to
# unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py. Results in configs/unsup3d/README.md.
_base_ = ['./unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py']

model = dict(
    temporal_discriminator=dict(
        type='PoseDiscriminator2D', num_keypoints=17, num_frames=2, width=256, num_blocks=2),
    temporal_gan_loss=dict(type='GANLoss', gan_type='vanilla', loss_weight=1.0,
                           loss_name='loss_temporal'),
)
train_dataloader = dict(dataset=dict(with_next=True))
optim_wrapper = dict(
    temporal_discriminator=dict(
        type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-4, weight_decay=1e-4)))
param_scheduler = dict(
    temporal_discriminator=[dict(type='ExponentialLR', gamma=0.99, by_epoch=True)])
