"""Martinez-style residual MLP that predicts one depth offset per joint."""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor, nn

from mmpose.registry import MODELS


class _ResidualBlock(nn.Module):
    """Two FC-BN-ReLU-Dropout layers with an identity skip."""

    def __init__(self, width: int, dropout: float, use_bn: bool) -> None:
        super().__init__()
        layers = []
        for _ in range(2):
            layers += [nn.Linear(width, width)]
            if use_bn:
                layers += [nn.BatchNorm1d(width)]
            layers += [nn.ReLU(inplace=True), nn.Dropout(dropout)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


@MODELS.register_module()
class ResidualLifter(BaseModule):
    """Residual MLP lifter (Martinez et al., ICCV 2017 architecture; Chen et al., CVPR 2019).

    ``Linear(J*C_in -> width) + BN + ReLU + Dropout``, then ``num_blocks`` residual blocks of two
    ``FC-BN-ReLU-Dropout`` layers, then ``Linear(width -> J * out_channels)``.

    It is usable both stand-alone (``forward(x)`` with ``x`` of shape ``(B, J, C_in)``) and as an
    MMPose ``PoseLifter`` backbone (``x`` of shape ``(B, J*C_in, T)`` with ``T = 1``; returns a
    tuple with one ``(B, width, 1)`` feature map when ``as_backbone=True``).

    Args:
        num_keypoints: J.
        in_channels: channels per joint (2 for x, y; 3 when a confidence score is appended).
        out_channels: outputs per joint (1 depth offset for the unsupervised lifter).
        width: hidden width.
        num_blocks: number of residual blocks.
        dropout: dropout probability.
        use_bn: whether to use BatchNorm1d after each linear layer.
        as_backbone: return hidden features instead of depths (MMPose backbone mode).
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 num_keypoints: int = 17,
                 in_channels: int = 2,
                 out_channels: int = 1,
                 width: int = 1024,
                 num_blocks: int = 4,
                 dropout: float = 0.25,
                 use_bn: bool = True,
                 as_backbone: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_keypoints <= 0 or in_channels <= 0 or width <= 0 or num_blocks < 0:
            raise ValueError('ResidualLifter: num_keypoints, in_channels and width must be '
                             f'positive and num_blocks >= 0, got {num_keypoints}, '
                             f'{in_channels}, {width}, {num_blocks}')
        self.num_keypoints = num_keypoints
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.as_backbone = as_backbone
        stem = [nn.Linear(num_keypoints * in_channels, width)]
        if use_bn:
            stem += [nn.BatchNorm1d(width)]
        stem += [nn.ReLU(inplace=True), nn.Dropout(dropout)]
        self.stem = nn.Sequential(*stem)
        self.blocks = nn.Sequential(
            *[_ResidualBlock(width, dropout, use_bn) for _ in range(num_blocks)])
        self.out = None if as_backbone else nn.Linear(width, num_keypoints * out_channels)

    def forward(self, x: Tensor):
        """Predict per-joint outputs.

        Args:
            x: ``(B, J, C_in)`` joints, or ``(B, J*C_in, 1)`` as MMPose's lifting codecs pack
                single frames (or already flat ``(B, J*C_in)``).

        Returns:
            ``(B, J)`` if ``out_channels == 1`` else ``(B, J, out_channels)``; in backbone mode
            a 1-tuple with a ``(B, width, 1)`` feature map.
        """
        batch = x.shape[0]
        flat = x.reshape(batch, -1)
        expected = self.num_keypoints * self.in_channels
        if flat.shape[1] != expected:
            raise ValueError(f'ResidualLifter expects {self.num_keypoints} joints x '
                             f'{self.in_channels} channels = {expected} inputs per sample, '
                             f'got input of shape {tuple(x.shape)}')
        feat = self.blocks(self.stem(flat))
        if self.as_backbone:
            return (feat.unsqueeze(-1), )
        out = self.out(feat)
        if self.out_channels == 1:
            return out
        return out.view(batch, self.num_keypoints, self.out_channels)
