# Human3.6M config of the zoo model unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap: the
# Human3.6M protocol of unsup3d_reslifter-2ddisc_8xb64-200e_h36m.py (test on S9, S11 with
# MMPose's MPJPE, ground-truth 2D) with the zoo model's network sizes (lifter 512 x 4 blocks,
# discriminator 256 x 2 blocks) instead of the paper's 1024, so that the zoo checkpoint loads.
# Evaluate the zoo checkpoint in one command (the name is resolved and sha256-verified):
#   python tools/test.py \
#       configs/unsup3d/zoo_h36m/unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap_h36m.py \
#       unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap \
#       --cfg-options data_root=data/h36m/
# Training with this file trains the zoo architecture on Human3.6M with the Human3.6M schedule.
# See docs/h36m.md ("Zoo models on Human3.6M") for what the N-MPJPE it prints compares.
_base_ = ['../unsup3d_reslifter-2ddisc_8xb64-200e_h36m.py']

model = dict(
    lifter=dict(width=512, num_blocks=4, in_channels=2),
    discriminator=dict(width=256, num_blocks=2),
)
