# Unsup3D + temporal discriminator (../unsup3d_reslifter-2ddisc-tdisc_...), with Adam
# betas (0.5, 0.9) for the lifter and both discriminators: the GAN setting of the public
# reproduction by Yu et al. (ICCV 2021). Everything else, the chirality prior included, is the
# temporal config's. Results (tail and leave-motion-out) in configs/unsup3d/README.md.
_base_ = ['./unsup3d_reslifter-2ddisc-tdisc_1xb256-100e_pybullet-mocap.py']

# Lower beta1 makes Adam's momentum forget faster; with a discriminator that keeps moving,
# stale momentum points the lifter at where the discriminator was rather than where it is.
gan_betas = (0.5, 0.9)
optim_wrapper = dict(
    lifter=dict(optimizer=dict(betas=gan_betas)),
    discriminator=dict(optimizer=dict(betas=gan_betas)),
    temporal_discriminator=dict(optimizer=dict(betas=gan_betas)),
)
