"""Camera samplers and 2D augmentations (registered in MMPose's ``TASK_UTILS``)."""
from .augmentations import KeypointNoise2D, RandomFlip2D
from .camera_samplers import ElevationRetiltCameraSampler, RandomOrbitCameraSampler

__all__ = ['RandomOrbitCameraSampler', 'ElevationRetiltCameraSampler', 'RandomFlip2D',
           'KeypointNoise2D']
