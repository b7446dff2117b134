"""Camera samplers: registration, angle ranges, orthonormality."""
import math

import pytest
import torch

from mmpose.registry import TASK_UTILS
from mmunsup3d.models.task_modules import ElevationRetiltCameraSampler, RandomOrbitCameraSampler
from mmunsup3d.structures import euler_to_rotmat


def _angles(rot):
    """Inverse of euler_to_rotmat's R_roll @ R_elev @ R_azim (elevation about x first)."""
    elev = torch.asin(rot[:, 2, 1].clamp(-1, 1)) * -1
    return elev


def test_orbit_sampler_ranges_and_orthonormality():
    sampler = TASK_UTILS.build(dict(type='RandomOrbitCameraSampler', max_azimuth_deg=90.0,
                                    max_elevation_deg=0.0, max_roll_deg=0.0))
    assert isinstance(sampler, RandomOrbitCameraSampler) and not sampler.needs_elevation
    torch.manual_seed(0)
    rot = sampler(torch.zeros(2000, 17, 2))
    eye = torch.eye(3).expand_as(rot)
    assert torch.allclose(rot @ rot.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.det(rot), torch.ones(2000), atol=1e-5)
    # no elevation / roll: a rotation about the y axis only, angle atan2(R02, R00)
    assert torch.allclose(rot[:, 1], torch.tensor([0.0, 1.0, 0.0]).expand(2000, 3), atol=1e-6)
    azim = torch.atan2(rot[:, 0, 2], rot[:, 0, 0])
    assert azim.abs().max() <= math.radians(90) + 1e-5
    assert azim.abs().max() > math.radians(85)  # the whole range is used
    with pytest.raises(ValueError, match='max_azimuth_deg must lie in'):
        RandomOrbitCameraSampler(max_azimuth_deg=200.0)


def test_orbit_sampler_default_roll_is_half_the_elevation_and_uses_global_rng():
    sampler = RandomOrbitCameraSampler(max_azimuth_deg=0.0, max_elevation_deg=20.0)
    torch.manual_seed(3)
    rot = sampler(torch.zeros(8, 17, 2))
    torch.manual_seed(3)
    u = torch.rand(8, 3) * 2 - 1
    want = euler_to_rotmat(torch.zeros(8), u[:, 1] * math.radians(20), u[:, 2] * math.radians(10))
    assert torch.allclose(rot, want, atol=1e-6)


def test_retilt_sampler_needs_elevations_and_stays_in_bounds():
    sampler = TASK_UTILS.build(dict(type='ElevationRetiltCameraSampler', max_azimuth_deg=0.0,
                                    max_roll_deg=0.0))
    assert isinstance(sampler, ElevationRetiltCameraSampler) and sampler.needs_elevation
    x = torch.zeros(64, 17, 2)
    with pytest.raises(ValueError, match='needs the predicted elevations'):
        sampler(x)
    elev = torch.full((64, ), 0.3)
    rot = sampler(x, elev, (0.0, 0.5))
    # no azimuth/roll and zero spread: the new elevation equals the old one -> identity
    assert torch.allclose(rot, torch.eye(3).expand(64, 3, 3), atol=1e-6)
    torch.manual_seed(0)
    wide = torch.linspace(0.0, 1.0, 64)
    rot = sampler(x, wide, (0.2, 0.4))
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3).expand(64, 3, 3), atol=1e-5)
