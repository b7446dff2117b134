"""The trivial baseline: every joint at the same depth."""
import torch
from torch import Tensor, nn

from mmpose.registry import MODELS


@MODELS.register_module()
class FlatDepthLifter(nn.Module):
    """Predicts a zero depth offset for every joint, i.e. the 2D pose on a fronto-parallel plane.

    Any useful lifter has to beat it; it has no parameters and needs no training.

    Args:
        num_keypoints: J.
    """

    def __init__(self, num_keypoints: int = 17, **kwargs) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints

    def forward(self, x: Tensor) -> Tensor:
        """``(B, J, C)`` -> ``(B, J)`` zeros."""
        return torch.zeros(x.shape[0], self.num_keypoints, dtype=x.dtype, device=x.device)
