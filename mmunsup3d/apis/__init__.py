from .inference import init_lifter, lift_keypoints
from .zoo import DownloadError, download_checkpoint, resolve_model

__all__ = ['init_lifter', 'lift_keypoints', 'download_checkpoint', 'resolve_model', 'DownloadError']
