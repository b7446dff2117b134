# Flat-depth baseline: every joint at the root's depth (the 2D pose on a fronto-parallel plane).
# No parameters, no training: `python tools/test.py <this config> none`.
_base_ = ['./unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py']

model = dict(
    lifter=dict(_delete_=True, type='FlatDepthLifter', num_keypoints=17),
    discriminator=None,
)
