"""Random virtual cameras of the cycle, chosen by ``model.camera_sampler=dict(type=...)``."""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from mmpose.registry import TASK_UTILS
from ...structures.geometry import retilt_rotations, sample_rotations

__all__ = ['RandomOrbitCameraSampler', 'ElevationRetiltCameraSampler']


def _default_roll(max_elevation_deg: float, max_roll_deg: Optional[float]) -> float:
    return max_elevation_deg / 2.0 if max_roll_deg is None else max_roll_deg


@TASK_UTILS.register_module()
class RandomOrbitCameraSampler:
    """The paper's cameras: azimuth, elevation and roll drawn uniformly about the root.

    Azimuth ~ U(±B_az) about the observing camera's vertical axis, elevation ~ U(±B_el), roll
    ~ U(±B_roll) with ``B_roll = B_el / 2`` by default (Chen et al. as reproduced by Yu et al.:
    B_az = 140°, B_el = 20°). Draws ``B x 3`` uniforms from torch's global generator.

    Args:
        max_azimuth_deg: B_az.
        max_elevation_deg: B_el.
        max_roll_deg: B_roll; ``None`` = ``max_elevation_deg / 2``.
    """

    needs_elevation = False

    def __init__(self, max_azimuth_deg: float = 140.0, max_elevation_deg: float = 20.0,
                 max_roll_deg: Optional[float] = None) -> None:
        for name, value in (('max_azimuth_deg', max_azimuth_deg),
                            ('max_elevation_deg', max_elevation_deg),
                            ('max_roll_deg', max_roll_deg)):
            if value is not None and not 0.0 <= value <= 180.0:
                raise ValueError(f'{name} must lie in [0, 180] degrees, got {value}')
        self.max_azimuth_deg = max_azimuth_deg
        self.max_elevation_deg = max_elevation_deg
        self.max_roll_deg = max_roll_deg

    def __call__(self, x: Tensor, elevation: Optional[Tensor] = None,
                 elevation_bounds: Optional[Tuple[float, float]] = None) -> Tensor:
        """Rotations for a batch.

        Args:
            x: ``(B, J, 2)`` normalised 2D poses (only batch size, device and dtype are used).
            elevation: unused (see :class:`ElevationRetiltCameraSampler`).
            elevation_bounds: unused.

        Returns:
            ``(B, 3, 3)`` rotation matrices.
        """
        return sample_rotations(x.shape[0], max_azimuth_deg=self.max_azimuth_deg,
                                max_elevation_deg=self.max_elevation_deg,
                                max_roll_deg=self.max_roll_deg, device=x.device, dtype=x.dtype)


@TASK_UTILS.register_module()
class ElevationRetiltCameraSampler(RandomOrbitCameraSampler):
    """ElePose-style cameras around a learned elevation (Wandt et al., CVPR 2022).

    Each camera undoes the predicted elevation of the input's camera, turns the pose about its
    upright axis (azimuth ~ U(±B_az)), then views it from an elevation drawn from
    ``N(mean, std)`` of the batch's (detached) predictions, clamped to the predictor's range,
    with a roll ~ U(±B_roll). Draws ``B`` normals, then ``B x 2`` uniforms.

    Args:
        max_azimuth_deg: B_az.
        max_elevation_deg: only sets the default roll range (``B_el / 2``).
        max_roll_deg: B_roll.
    """

    needs_elevation = True

    def __call__(self, x: Tensor, elevation: Optional[Tensor] = None,
                 elevation_bounds: Optional[Tuple[float, float]] = None) -> Tensor:
        """Rotations for a batch.

        Args:
            x: ``(B, J, 2)`` normalised 2D poses.
            elevation: ``(B,)`` predicted elevations of the observing cameras (radians;
                detached by the caller).
            elevation_bounds: ``(low, high)`` radians the new elevations are clamped to.

        Returns:
            ``(B, 3, 3)`` rotation matrices.
        """
        if elevation is None or elevation_bounds is None:
            raise ValueError('ElevationRetiltCameraSampler needs the predicted elevations and '
                             'their bounds: give the model an elevation_net')
        batch = x.shape[0]
        mean = elevation.mean()
        std = elevation.std() if batch > 1 else torch.zeros_like(mean)
        target = (mean + std * torch.randn(batch, device=x.device, dtype=x.dtype)).clamp(
            *elevation_bounds)
        u = torch.rand(batch, 2, device=x.device, dtype=x.dtype) * 2.0 - 1.0
        azimuth = u[:, 0] * math.radians(self.max_azimuth_deg)
        roll = u[:, 1] * math.radians(_default_roll(self.max_elevation_deg, self.max_roll_deg))
        return retilt_rotations(elevation, target, azimuth, roll)
