"""Discriminators that tell dataset 2D poses from synthetic projections."""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor, nn

from mmpose.registry import MODELS


class _PlainResBlock(nn.Module):
    """Two FC-LeakyReLU layers with an identity skip (no BatchNorm, see below)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, width), nn.LeakyReLU(0.2, inplace=True), nn.Linear(width, width),
            nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


@MODELS.register_module()
class PoseDiscriminator2D(BaseModule):
    """Residual MLP that scores normalised 2D poses (one logit per pose).

    No BatchNorm: real and fake batches are scored separately, and batch statistics would let
    the discriminator separate them by batch rather than by pose; it also keeps distributed
    training exact without SyncBN.

    Args:
        num_keypoints: J.
        in_channels: channels per joint.
        num_frames: consecutive frames judged together (1 for single poses, 2 for the temporal
            discriminator, which sees a pose and its successor).
        width: hidden width.
        num_blocks: number of residual blocks.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 num_keypoints: int = 17,
                 in_channels: int = 2,
                 num_frames: int = 1,
                 width: int = 1024,
                 num_blocks: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_keypoints = num_keypoints
        self.in_channels = in_channels
        self.num_frames = num_frames
        self.in_features = num_keypoints * in_channels * num_frames
        self.stem = nn.Sequential(nn.Linear(self.in_features, width), nn.LeakyReLU(0.2, True))
        self.blocks = nn.Sequential(*[_PlainResBlock(width) for _ in range(num_blocks)])
        self.head = nn.Linear(width, 1)

    def forward(self, poses: Tensor) -> Tensor:
        """Score poses.

        Args:
            poses: ``(B, J, C)`` (``num_frames == 1``), ``(B, T, J, C)`` or already flat.

        Returns:
            ``(B,)`` logits (higher = more realistic).
        """
        flat = poses.reshape(poses.shape[0], -1)
        if flat.shape[1] != self.in_features:
            raise ValueError(f'{type(self).__name__} expects {self.in_features} inputs per '
                             f'sample ({self.num_frames} frame(s) x {self.num_keypoints} joints x '
                             f'{self.in_channels}), got shape {tuple(poses.shape)}')
        return self.head(self.blocks(self.stem(flat))).squeeze(-1)
