# Human3.6M config of the zoo model
# unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-200e_pybullet-mocap: the zoo temporal
# model's Human3.6M config (./unsup3d_reslifter-2ddisc-tdisc_..._h36m.py: S9, S11 with MMPose's
# MPJPE, ground-truth 2D, the zoo's network sizes, so that the zoo checkpoint loads) with the
# zoo model's GAN setting: least-squares GAN for both discriminators and Adam betas (0.5, 0.9)
# for all three optimizers (only training reads these; evaluation uses the lifter alone).
# Evaluate the zoo checkpoint in one command (the name is resolved and sha256-verified):
#   python tools/test.py \
#       configs/unsup3d/zoo_h36m/unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-200e_pybullet-mocap_h36m.py \
#       unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-200e_pybullet-mocap \
#       --cfg-options data_root=data/h36m/
# See docs/h36m.md ("Zoo models on Human3.6M") for what the N-MPJPE it prints compares.
_base_ = ['./unsup3d_reslifter-2ddisc-tdisc_1xb256-100e_pybullet-mocap_h36m.py']

model = dict(
    gan_loss=dict(gan_type='lsgan'),
    temporal_gan_loss=dict(gan_type='lsgan'),
)
gan_betas = (0.5, 0.9)
optim_wrapper = dict(
    lifter=dict(optimizer=dict(betas=gan_betas)),
    discriminator=dict(optimizer=dict(betas=gan_betas)),
    temporal_discriminator=dict(optimizer=dict(betas=gan_betas)),
)
