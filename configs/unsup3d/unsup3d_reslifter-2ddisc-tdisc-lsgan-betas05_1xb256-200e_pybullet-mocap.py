# The recommended configuration: ./unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-100e_...
# (2D + temporal discriminator, chirality prior, least-squares GAN, Adam betas (0.5, 0.9))
# trained for 200 epochs instead of 100. Only the loop length changes: the learning rates keep
# decaying x0.99 per epoch, and validation and checkpoints stay every 100 epochs, so this run's
# epoch_100.pth is the 100-epoch config's checkpoint. Results in configs/unsup3d/README.md.
_base_ = ['./unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-100e_pybullet-mocap.py']

train_cfg = dict(max_epochs=200)
