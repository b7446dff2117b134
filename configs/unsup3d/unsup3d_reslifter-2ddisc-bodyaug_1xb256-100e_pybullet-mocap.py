# Unsup3D with body-proportion augmentation: every training camera of every clip sees the clip
# on its own randomly proportioned body (each bone's length times a log-normal factor, log-std
# 0.2, left = right). The embedded clips all share one skeleton, so without it the lifter can
# read depth off 2D bone lengths that hold for that skeleton only, and misreads performers
# (or mocap rigs) with other proportions. The test split keeps the data's skeleton. Otherwise
# identical to unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py (chirality prior included).
_base_ = ['./unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py']

train_dataloader = dict(dataset=dict(bone_scale_std=0.2))
