# Chen et al. (CVPR 2019) core model, hyper-parameters as in the public reproduction (Yu et al.):
# residual lifter, 2D discriminator, random cameras (azimuth ±140°, elevation ±20°,
# roll ±10°), Adam 2e-4 with weight decay 1e-4 for both networks, LR x0.95 per epoch.
lifter_width = 1024
lifter_blocks = 4
model = dict(
    type='Unsup3DLifter',
    lifter=dict(
        type='ResidualLifter', num_keypoints=17, in_channels=2, width=lifter_width,
        num_blocks=lifter_blocks, dropout=0.25),
    discriminator=dict(type='PoseDiscriminator2D', num_keypoints=17, width=1024, num_blocks=3),
    depth_offset=10.0,
    min_depth=1.0,
    # RMS scale normalisation instead of the paper's head-root distance: identical scale for
    # upright people, but stable when the trunk points at the camera (see normalize_2d).
    scale_mode='rms',
    # The paper's virtual cameras: azimuth ±140°, elevation ±20°, roll ±10° (half of it).
    camera_sampler=dict(type='RandomOrbitCameraSampler', max_azimuth_deg=140.0,
                        max_elevation_deg=20.0, max_roll_deg=None),
    # 2D reprojection and 3D rotation consistency of the lift-rotate-project-lift cycle, and
    # the chirality prior (knees bend forwards): under weak perspective and symmetric cameras
    # the depth mirror is an exact symmetry of every 2D loss, and this term breaks it.
    cycle_losses=[
        dict(type='ReprojectionConsistencyLoss', loss_weight=1.0),
        dict(type='RotationConsistencyLoss', loss_weight=1.0),
        dict(type='ChiralityLoss', loss_weight=1.0),
    ],
    # The 2D discriminator's objective (generator term: loss_adv).
    gan_loss=dict(type='GANLoss', gan_type='vanilla', loss_weight=1.0),
    # R1 gradient penalty on real poses: without it the GAN did not find the 3D basin on the
    # embedded mocap (N-MPJPE worse than flat depth); see configs/unsup3d/README.md.
    disc_auxiliary_losses=[dict(type='R1GradientPenalty', loss_weight=0.01)],
    # Horizontal flips of the 2D input (with left/right swapped) are valid 2D poses.
    flip=dict(type='RandomFlip2D', flip_prob=0.5),
    # Unsupervised predictions have no metric scale: for plain MPJPE they are rescaled so that
    # the pelvis-to-head-top distance is 0.72 m, an adult-size prior (N-/P-MPJPE ignore it).
    test_cfg=dict(output_head_root=0.72),
)

optim_wrapper = dict(
    constructor='Unsup3DOptimWrapperConstructor',
    lifter=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-4, weight_decay=1e-4)),
    discriminator=dict(
        type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-4, weight_decay=1e-4)),
)
param_scheduler = dict(
    lifter=[dict(type='ExponentialLR', gamma=0.95, by_epoch=True)],
    discriminator=[dict(type='ExponentialLR', gamma=0.95, by_epoch=True)],
)
# The GAN step calls each sub-network separately, so each is wrapped on its own.
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=False)
