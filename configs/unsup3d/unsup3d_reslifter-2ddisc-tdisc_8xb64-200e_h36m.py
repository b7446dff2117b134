# Human3.6M with the paper's temporal consistency: a 2-frame discriminator judges consecutive 2D
# poses of a video (real) against both frames lifted and seen through the same random camera
# (fake). next_step=2 pairs each frame with the frame two rows later in the same video of
# MMPose's preprocessed files; a choice, not a tuned value (no Human3.6M run exists here).
# Otherwise identical to unsup3d_reslifter-2ddisc_8xb64-200e_h36m.py.
_base_ = ['./unsup3d_reslifter-2ddisc_8xb64-200e_h36m.py']

model = dict(
    temporal_discriminator=dict(
        type='PoseDiscriminator2D', num_keypoints=17, num_frames=2, width=1024, num_blocks=3),
    temporal_gan_loss=dict(type='GANLoss', gan_type='vanilla', loss_weight=1.0,
                           loss_name='loss_temporal'),
)
train_dataloader = dict(dataset=dict(with_next=True, next_step=2))
optim_wrapper = dict(
    temporal_discriminator=dict(
        type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-4, weight_decay=1e-4)))
param_scheduler = dict(
    temporal_discriminator=[dict(type='ExponentialLR', gamma=0.95, by_epoch=True)])
