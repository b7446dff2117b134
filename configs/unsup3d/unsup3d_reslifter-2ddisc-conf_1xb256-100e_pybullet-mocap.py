# Confidence-aware Unsup3D: the lifter reads (x, y, score) per joint and training corrupts the
# real 2D poses like a detector would (jitter of 3 % of the pose's RMS size, 3 % gross errors,
# 3 % dropped joints collapsed onto their parent with score 0). Scores fall with the injected
# error. At test time scores come from the data (1 for the shipped mocap). Otherwise identical
# to unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py.
_base_ = ['./unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py']

model = dict(
    lifter=dict(in_channels=3),  # x, y, score: a confidence-aware lifter
    keypoint_noise=dict(type='KeypointNoise2D', std=0.03, outlier_prob=0.03, outlier_std=0.3,
                        drop_prob=0.03),
)
