# Unsup3D + temporal discriminator with the GAN setting of the public reproduction by Yu et al.
# (ICCV 2021): least-squares GAN objective for both discriminators and Adam betas (0.5, 0.9)
# for all three optimizers (../unsup3d_reslifter-2ddisc-tdisc-betas05_...). Everything else,
# the chirality prior included, is the temporal config's. Results in configs/unsup3d/README.md.
_base_ = ['./unsup3d_reslifter-2ddisc-tdisc-betas05_1xb256-100e_pybullet-mocap.py']

model = dict(
    gan_loss=dict(gan_type='lsgan'),
    temporal_gan_loss=dict(gan_type='lsgan'),
)
