# Unsup3D + temporal discriminator + a learned camera-elevation prior (after ElePose, CVPR'22):
# a small network predicts the elevation of the camera that saw each 2D pose; every virtual
# camera undoes it, orbits the pose about its upright axis (azimuth ±140°) and views it from an
# elevation drawn from N(mean, std) of the batch's predictions (roll ±10°). The predictor learns
# from 2D the elevation implied by the lifter's own torso (loss_elevation). The prediction is
# bounded to [0°, 40°] (cameras above the pelvis, looking down): the depth-mirrored lift would
# need negative elevations (see ElevationPredictor). Otherwise identical to
# unsup3d_reslifter-2ddisc-tdisc_1xb256-100e_pybullet-mocap.py. Results in README.md.
_base_ = ['./unsup3d_reslifter-2ddisc-tdisc_1xb256-100e_pybullet-mocap.py']

model = dict(
    elevation_net=dict(type='ElevationPredictor', num_keypoints=17, width=256, num_layers=2,
                       elevation_range_deg=(0.0, 40.0)),
    camera_sampler=dict(type='ElevationRetiltCameraSampler', max_azimuth_deg=140.0,
                        max_roll_deg=10.0),
    cycle_losses=[
        dict(type='ReprojectionConsistencyLoss', loss_weight=1.0),
        dict(type='RotationConsistencyLoss', loss_weight=1.0),
        dict(type='ChiralityLoss', loss_weight=1.0),
        dict(type='ElevationRegressionLoss', loss_weight=1.0, beta=0.1),
    ],
)
# The predictor is trained in the generator step, under the lifter's optimizer; at the lifter's
# LR its sigmoid output barely moved in 13 epochs (10.0° -> 10.4°), hence the x10 multiplier.
optim_wrapper = dict(
    lifter=dict(
        modules=['lifter', 'elevation_net'],
        paramwise_cfg=dict(custom_keys={'elevation_net': dict(lr_mult=10.0)})))
