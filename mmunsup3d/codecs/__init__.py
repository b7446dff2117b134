"""MMPose keypoint codecs (registered in ``mmpose.registry.KEYPOINT_CODECS``)."""
from .perspective_depth_lifting import PerspectiveDepthLifting

__all__ = ['PerspectiveDepthLifting']
