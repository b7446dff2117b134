"""MMPose-compatible heads (registered in ``mmpose.registry.MODELS``)."""
from .depth_lifting_head import DepthLiftingHead

__all__ = ['DepthLiftingHead']
