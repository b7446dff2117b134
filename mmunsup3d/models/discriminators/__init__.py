from .pose_discriminator import PoseDiscriminator2D

__all__ = ['PoseDiscriminator2D']
