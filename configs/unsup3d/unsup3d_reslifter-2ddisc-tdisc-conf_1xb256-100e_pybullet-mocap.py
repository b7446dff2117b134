# Unsup3D + temporal discriminator + confidence-aware input with detector-like training noise
# (as in unsup3d_reslifter-2ddisc-conf_1xb256-100e_pybullet-mocap.py): the two options that
# helped in the ablation, combined. Results in README.md.
_base_ = ['./unsup3d_reslifter-2ddisc-tdisc_1xb256-100e_pybullet-mocap.py']

model = dict(
    lifter=dict(in_channels=3),  # x, y, score: a confidence-aware lifter
    keypoint_noise=dict(type='KeypointNoise2D', std=0.03, outlier_prob=0.03, outlier_std=0.3,
                        drop_prob=0.03),
)
