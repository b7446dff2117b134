"""Camera geometry for unsupervised lifting: small, pure, batched, differentiable functions.

Conventions (camera frame, as in Human3.6M's camera coordinates and MMPose's lifting targets):
x to the right, y down, z forward (away from the camera). Poses are ``(..., J, C)`` tensors with
J joints and C = 2 (image plane) or 3 (camera space). Rotations act on row vectors as
``X @ R.transpose(-1, -2)``, i.e. ``R`` maps old camera coordinates to new ones.

The lifting model follows Chen et al. (CVPR 2019) as reproduced by Yu et al. (ICCV 2021) and
ElePose (CVPR 2022): 2D input is root-centred and scaled so the head-to-root distance is ``1/c``;
the network predicts a depth offset ``d`` per joint and the 3D point is
``X = (x * z, y * z, z)`` with ``z = max(min_depth, d + c)``. With ``c = 10`` a person is about
one unit tall in 3D and stands ten units from the camera, so perspective effects are mild and
bounded, and ``min_depth`` keeps every joint in front of the camera.
"""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    'normalize_2d', 'lift_to_3d', 'euler_to_rotmat', 'sample_rotations', 'rotate', 'project',
    'root_center', 'retilt_rotations', 'normalize_2d_masked'
]


def root_center(points: Tensor, root_idx: int = 0) -> Tensor:
    """Subtract the root joint.

    Args:
        points: ``(..., J, C)`` poses.
        root_idx: index of the root joint.

    Returns:
        ``(..., J, C)`` poses with the root at the origin.
    """
    return points - points[..., root_idx:root_idx + 1, :]


def normalize_2d(keypoints: Tensor,
                 root_idx: int = 0,
                 head_idx: int = 10,
                 c: float = 10.0,
                 mode: str = 'head',
                 rms_ratio: float = 0.65,
                 eps: float = 1e-8) -> Tuple[Tensor, Tensor]:
    """Root-centre 2D poses and normalise their scale.

    ``mode='head'`` (Chen et al. / Yu et al.): scale so that ``|head - root| = 1 / c``.
    ``mode='rms'``: scale so that the root-mean-square joint distance from the root is
    ``rms_ratio / c``. For upright people both agree (the RMS distance is about 0.65 of the
    head-root distance), but the head-root distance collapses when the trunk points at the
    camera (crawling, rolling, lying), blowing the pose up by 10-40x; the RMS over 17 joints
    cannot collapse.

    The result is invariant to image translation and scale, so pixel coordinates can be fed
    directly (no intrinsics needed). Scale-invariance is why an unsupervised lifter is only
    defined up to scale and is evaluated with N-MPJPE / P-MPJPE.

    Args:
        keypoints: ``(..., J, 2)`` 2D poses (pixels or any image-plane unit).
        root_idx: root joint (Human3.6M: 0, pelvis).
        head_idx: head joint (Human3.6M: 10, head top), for ``mode='head'``.
        c: depth offset of the lifting model; sets the normalised size ``1/c``.
        mode: ``'head'`` or ``'rms'``.
        rms_ratio: target RMS distance in units of ``1/c`` for ``mode='rms'``.
        eps: lower bound of the measured size, so a degenerate pose cannot divide by 0.

    Returns:
        ``(normalized, scale)``: ``(..., J, 2)`` normalised poses and the ``(...,)`` factor that
        multiplied the root-centred input.
    """
    centred = root_center(keypoints, root_idx)
    if mode == 'head':
        size = centred[..., head_idx, :].norm(dim=-1)
        target = 1.0 / c
    elif mode == 'rms':
        size = centred.pow(2).sum(-1).mean(-1).sqrt()
        target = rms_ratio / c
    else:
        raise ValueError(f"normalize_2d: mode must be 'head' or 'rms', got {mode!r}")
    scale = target / size.clamp_min(eps)
    return centred * scale[..., None, None], scale


def lift_to_3d(keypoints_2d: Tensor,
               depth: Tensor,
               c: float = 10.0,
               min_depth: float = 1.0) -> Tensor:
    """Back-project normalised 2D poses with predicted depth offsets.

    Args:
        keypoints_2d: ``(..., J, 2)`` normalised image-plane coordinates (x/z, y/z).
        depth: ``(..., J)`` depth offsets predicted by a lifter.
        c: constant added to the offsets (the person's nominal distance).
        min_depth: smallest allowed depth, keeping joints in front of the camera.

    Returns:
        ``(..., J, 3)`` camera-space points ``(x z, y z, z)`` with ``z = max(min_depth, d + c)``.
    """
    z = (depth + c).clamp_min(min_depth).unsqueeze(-1)
    return torch.cat([keypoints_2d * z, z], dim=-1)


def project(points: Tensor, min_depth: float = 1e-3) -> Tensor:
    """Pinhole projection with unit focal length and principal point at the origin.

    Args:
        points: ``(..., J, 3)`` camera-space points.
        min_depth: depths below it are clamped so a point behind the camera cannot flip sign or
            divide by zero (a rotated, badly lifted pose can end up there early in training).

    Returns:
        ``(..., J, 2)`` image-plane coordinates ``(x / z, y / z)``.
    """
    return points[..., :2] / points[..., 2:].clamp_min(min_depth)


def rotate(points: Tensor, rotmat: Tensor) -> Tensor:
    """Apply rotations to poses.

    Args:
        points: ``(B, J, 3)`` (or ``(..., J, 3)``) camera-space points.
        rotmat: ``(B, 3, 3)`` (or ``(..., 3, 3)``) rotation matrices; broadcast over joints.

    Returns:
        ``(B, J, 3)`` rotated points ``points @ rotmat^T``. Use ``rotmat.transpose(-1, -2)`` for
        the inverse rotation.
    """
    return points @ rotmat.transpose(-1, -2)


def euler_to_rotmat(azimuth: Tensor, elevation: Tensor, roll: Tensor) -> Tensor:
    """Rotation matrices from camera-frame Euler angles (radians).

    ``R = R_roll(z) @ R_elev(x) @ R_azim(y)``: first turn the subject about the camera's vertical
    axis (y, pointing down), then tilt it about the horizontal axis x, then roll about the
    optical axis z. This is how a camera orbiting the subject's root sees it.

    Args:
        azimuth: ``(B,)`` rotation about the camera y axis.
        elevation: ``(B,)`` rotation about the camera x axis.
        roll: ``(B,)`` rotation about the camera z axis.

    Returns:
        ``(B, 3, 3)`` rotation matrices (orthonormal, determinant +1).
    """
    zeros, ones = torch.zeros_like(azimuth), torch.ones_like(azimuth)
    ca, sa = torch.cos(azimuth), torch.sin(azimuth)
    ce, se = torch.cos(elevation), torch.sin(elevation)
    cr, sr = torch.cos(roll), torch.sin(roll)
    r_azim = torch.stack([ca, zeros, sa, zeros, ones, zeros, -sa, zeros, ca], -1).view(-1, 3, 3)
    r_elev = torch.stack([ones, zeros, zeros, zeros, ce, -se, zeros, se, ce], -1).view(-1, 3, 3)
    r_roll = torch.stack([cr, -sr, zeros, sr, cr, zeros, zeros, zeros, ones], -1).view(-1, 3, 3)
    return r_roll @ r_elev @ r_azim


def sample_rotations(num: int,
                     max_azimuth_deg: float = 140.0,
                     max_elevation_deg: float = 20.0,
                     max_roll_deg: Optional[float] = None,
                     elevation_center: Optional[Tensor] = None,
                     generator: Optional[torch.Generator] = None,
                     device: Optional[torch.device] = None,
                     dtype: torch.dtype = torch.float32) -> Tensor:
    """Sample random virtual cameras around the subject.

    Azimuth ~ U(-B_az, B_az), elevation ~ U(-B_el, B_el) (+ an optional per-sample centre, used
    by the learned elevation prior), roll ~ U(-B_roll, B_roll) with ``B_roll = B_el / 2`` by
    default, as in the public reproduction of Chen et al. (B_az = 140°, B_el = 20°).

    Args:
        num: number of rotations B.
        max_azimuth_deg: B_az in degrees.
        max_elevation_deg: B_el in degrees.
        max_roll_deg: B_roll in degrees; ``None`` means ``max_elevation_deg / 2``.
        elevation_center: optional ``(B,)`` elevation offsets in radians.
        generator: optional torch generator for reproducible sampling.
        device: device of the result.
        dtype: dtype of the result.

    Returns:
        ``(B, 3, 3)`` rotation matrices.
    """
    if max_roll_deg is None:
        max_roll_deg = max_elevation_deg / 2.0
    u = torch.rand(num, 3, generator=generator, device=device, dtype=dtype) * 2.0 - 1.0
    bounds = torch.tensor([max_azimuth_deg, max_elevation_deg, max_roll_deg],
                          device=device, dtype=dtype) * (math.pi / 180.0)
    angles = u * bounds
    elevation = angles[:, 1]
    if elevation_center is not None:
        elevation = elevation + elevation_center.to(dtype)
    return euler_to_rotmat(angles[:, 0], elevation, angles[:, 2])


def retilt_rotations(elevation_from: Tensor,
                     elevation_to: Tensor,
                     azimuth: Tensor,
                     roll: Optional[Tensor] = None) -> Tensor:
    """Virtual cameras that orbit the subject about its *upright* axis (ElePose, CVPR 2022).

    ``R = R_roll(roll) @ R_elev(elevation_to) @ R_azim(azimuth) @ R_elev(-elevation_from)``:
    first undo the observing camera's elevation (the pose becomes upright: world up is the
    camera's ``-y``), turn it about the vertical axis, then view it from a new elevation. A
    positive elevation is a camera above the subject looking down (world up is
    ``(0, -cos e, -sin e)`` in its frame). Plain :func:`sample_rotations` instead turns the pose
    about the observing camera's own ``y`` axis, which is tilted whenever that camera is.

    Args:
        elevation_from: ``(B,)`` elevation of the camera that saw the input (radians).
        elevation_to: ``(B,)`` elevation of the virtual camera (radians).
        azimuth: ``(B,)`` rotation about the upright axis (radians).
        roll: optional ``(B,)`` roll about the optical axis (radians).

    Returns:
        ``(B, 3, 3)`` rotation matrices; identity when ``elevation_to == elevation_from`` and
        azimuth and roll are 0.
    """
    zeros = torch.zeros_like(azimuth)
    roll = zeros if roll is None else roll
    untilt = euler_to_rotmat(zeros, -elevation_from, zeros)
    return euler_to_rotmat(azimuth, elevation_to, roll) @ untilt


def normalize_2d_masked(keypoints: Tensor,
                        valid: Tensor,
                        c: float = 10.0,
                        rms_ratio: float = 0.65,
                        eps: float = 1e-8) -> Tuple[Tensor, Tensor]:
    """RMS-normalise 2D poses that may have missing joints (e.g. COCO detections).

    The centre is the mean of the valid joints, the scale their RMS distance from it
    (``rms_ratio / c`` after normalisation); invalid joints are set to the centre (0), so a
    missing joint stored as ``(0, 0)`` pixels cannot distort the pose.

    Args:
        keypoints: ``(..., J, 2)`` 2D poses.
        valid: ``(..., J)`` bool or {0, 1} mask of usable joints.
        c: depth offset of the lifting model (sets the size ``1/c``).
        rms_ratio: normalised RMS size in units of ``1/c``.
        eps: lower bound of the measured size.

    Returns:
        ``(normalized (..., J, 2), scale (...,))``.
    """
    w = valid.to(keypoints.dtype).unsqueeze(-1)
    count = w.sum(-2).clamp_min(1.0)  # (..., 1)
    centre = (keypoints * w).sum(-2, keepdim=True) / count.unsqueeze(-1)
    centred = (keypoints - centre) * w
    size = (centred.pow(2).sum((-1, -2)) / count.squeeze(-1)).sqrt()
    scale = (rms_ratio / c) / size.clamp_min(eps)
    return centred * scale[..., None, None], scale
