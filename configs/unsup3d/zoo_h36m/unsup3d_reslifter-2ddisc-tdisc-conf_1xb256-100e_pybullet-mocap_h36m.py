# Human3.6M config of the confidence-aware zoo model
# unsup3d_reslifter-2ddisc-tdisc-conf_1xb256-100e_pybullet-mocap: the Human3.6M protocol of
# unsup3d_reslifter-2ddisc-tdisc_8xb64-200e_h36m.py (test on S9, S11 with MMPose's MPJPE) with
# the zoo model's sizes (lifter 512 x 4 blocks on x, y, score; discriminators 256 x 2 blocks).
# The lifter reads a score per joint, so the 2D are detections: H36MLiftingDataset gives
# `keypoint_scores` only with keypoint_2d_src='detection' (the [x, y, score] .npy files of the
# "-det" config). On ground-truth 2D (`--cfg-options test_dataloader.dataset.keypoint_2d_src=gt`)
# there are no scores and the model uses 1 for every joint, as lift_keypoints without scores.
# Evaluate the zoo checkpoint in one command (the name is resolved and sha256-verified):
#   python tools/test.py \
#       configs/unsup3d/zoo_h36m/unsup3d_reslifter-2ddisc-tdisc-conf_1xb256-100e_pybullet-mocap_h36m.py \
#       unsup3d_reslifter-2ddisc-tdisc-conf_1xb256-100e_pybullet-mocap \
#       --cfg-options data_root=data/h36m/
# See docs/h36m.md ("Zoo models on Human3.6M") for what the N-MPJPE it prints compares.
_base_ = ['../unsup3d_reslifter-2ddisc-tdisc_8xb64-200e_h36m.py']

model = dict(
    lifter=dict(width=512, num_blocks=4, in_channels=3),
    discriminator=dict(width=256, num_blocks=2),
    temporal_discriminator=dict(width=256, num_blocks=2),
    # The zoo model's detector-like training noise (used by training only).
    keypoint_noise=dict(type='KeypointNoise2D', std=0.03, outlier_prob=0.03, outlier_std=0.3,
                        drop_prob=0.03),
)
train_dataloader = dict(
    dataset=dict(
        keypoint_2d_src='detection',
        keypoint_2d_det_file='joint_2d_det_files/cpn_ft_h36m_dbb_train.npy'))
val_dataloader = dict(
    dataset=dict(
        keypoint_2d_src='detection',
        keypoint_2d_det_file='joint_2d_det_files/cpn_ft_h36m_dbb_test.npy'))
test_dataloader = val_dataloader
