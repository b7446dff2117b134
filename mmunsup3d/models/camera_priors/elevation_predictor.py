"""Learned camera-elevation prior (after ElePose, Wandt et al., CVPR 2022)."""
import math
from typing import Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmpose.registry import MODELS


@MODELS.register_module()
class ElevationPredictor(BaseModule):
    """Predict the elevation of the camera that saw a 2D pose.

    A small MLP on the normalised 2D pose whose output is squashed into
    ``elevation_range_deg`` (a sigmoid, so the bounds are hard). Positive elevation = camera
    above the subject looking down. The predicted elevation un-tilts the lifted pose before the
    random virtual camera turns it about the upright axis
    (:func:`~mmunsup3d.models.geometry.retilt_rotations`). No elevation label exists: it is
    trained to predict, from 2D alone, the elevation implied by the lifter's own 3D torso
    (:func:`~mmunsup3d.models.torso_elevation`).

    Why bounded: for weak perspective the depth-mirrored lift seen from elevation ``-e`` is
    indistinguishable from the true lift seen from ``+e``, so a symmetric range cannot prefer
    either (the mirrored lift's torso implies ``-e``). Real cameras are mounted above the
    pelvis and look down; a range that excludes negative elevations is that physical prior and
    was meant to leave the mirror solution with a mismatched up-axis. Measured on the embedded
    mocap it did not: all three seeds still mirrored (configs/unsup3d/README.md).

    Args:
        num_keypoints: J.
        in_channels: channels per joint of the input.
        width: hidden width.
        num_layers: hidden layers.
        elevation_range_deg: ``(low, high)`` bounds of the prediction in degrees.
        init_elevation_deg: prediction at initialisation (the output bias is set to it).
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 num_keypoints: int = 17,
                 in_channels: int = 2,
                 width: int = 256,
                 num_layers: int = 2,
                 elevation_range_deg: Sequence[float] = (0.0, 40.0),
                 init_elevation_deg: Optional[float] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        low, high = (float(v) for v in elevation_range_deg)
        if not high > low:
            raise ValueError(f'elevation_range_deg must be (low, high) with high > low, got '
                             f'{tuple(elevation_range_deg)}')
        if init_elevation_deg is None:
            init_elevation_deg = low + 0.25 * (high - low)
        if not low < init_elevation_deg < high:
            raise ValueError(f'init_elevation_deg={init_elevation_deg} is outside '
                             f'elevation_range_deg=({low}, {high})')
        self.num_keypoints = num_keypoints
        self.in_channels = in_channels
        self.low, self.high = math.radians(low), math.radians(high)
        layers = []
        dim = num_keypoints * in_channels
        for _ in range(num_layers):
            layers += [nn.Linear(dim, width), nn.LeakyReLU(0.2)]
            dim = width
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(dim, 1)
        frac = (init_elevation_deg - low) / (high - low)
        with torch.no_grad():
            self.out.weight.mul_(0.01)  # start near the initial elevation for every pose
            self.out.bias.fill_(math.log(frac / (1.0 - frac)))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, J, C)`` normalised 2D poses -> ``(B,)`` elevations in radians."""
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.num_keypoints * self.in_channels:
            raise ValueError(f'ElevationPredictor expects {self.num_keypoints} joints x '
                             f'{self.in_channels} channels, got input of shape '
                             f'{tuple(x.shape)}')
        frac = torch.sigmoid(self.out(self.body(flat)).squeeze(-1))
        return self.low + (self.high - self.low) * frac
