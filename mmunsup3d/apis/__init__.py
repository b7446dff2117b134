from .inference import init_lifter, lift_keypoints

__all__ = ['init_lifter', 'lift_keypoints']
