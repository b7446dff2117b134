"""Human3.6M-like pinhole cameras for projecting motion capture (numpy, no autograd needed).

Convention as in Human3.6M's ``cameras.pkl`` (and MMPose's ``Human36mDataset``): a world point
``X_w`` maps to camera coordinates ``X_c = R @ (X_w - T)`` (x right, y down, z forward), then to
pixels ``u = f * X_c[:2] / X_c[2] + c``.
"""
from typing import Dict, Optional

import numpy as np

__all__ = ['look_at_camera', 'sample_h36m_like_camera', 'world_to_camera', 'camera_to_pixel']


def look_at_camera(position: np.ndarray, target: np.ndarray, roll_deg: float = 0.0,
                   up: Optional[np.ndarray] = None) -> np.ndarray:
    """Rotation ``R`` (world -> camera) of a camera at ``position`` looking at ``target``.

    Args:
        position: ``(3,)`` camera centre in a Z-up world.
        target: ``(3,)`` point on the optical axis.
        roll_deg: rotation about the optical axis.
        up: world up vector (default ``+z``).

    Returns:
        ``(3, 3)`` rotation whose rows are the camera's x (right), y (down), z (forward) axes.
    """
    up = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, dtype=np.float64)
    forward = np.asarray(target, np.float64) - np.asarray(position, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward])
    a = np.deg2rad(roll_deg)
    roll = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    return roll @ rot


def sample_h36m_like_camera(rng: np.random.Generator, target: np.ndarray,
                            azimuth: Optional[float] = None) -> Dict[str, np.ndarray]:
    """Draw one camera resembling Human3.6M's rigs (units: metres and pixels).

    1000x1000 px images, focal length 1145 ± 5 px, principal point 500 ± 10 px, the camera
    4.5-6 m from the subject at 1.2-1.9 m height, aimed at a point about 1 m above the
    subject's ground position (a mild downward tilt), roll within ±2°.

    Args:
        rng: numpy generator (fixed seeds make the camera set fixed).
        target: ``(3,)`` ground-level centre of the subject's motion.
        azimuth: optional azimuth (radians) around the subject; uniform if ``None``.

    Returns:
        dict with ``R (3, 3)``, ``T (3,)`` camera centre, ``f (2,)``, ``c (2,)``, ``w``, ``h``.
    """
    az = rng.uniform(0, 2 * np.pi) if azimuth is None else azimuth
    dist = rng.uniform(4.5, 6.0)
    height = rng.uniform(1.2, 1.9)
    aim = np.asarray(target, np.float64) + np.array([0.0, 0.0, rng.uniform(0.8, 1.1)])
    pos = np.array([aim[0] + dist * np.cos(az), aim[1] + dist * np.sin(az), height])
    rot = look_at_camera(pos, aim, roll_deg=rng.uniform(-2.0, 2.0))
    focal = 1145.0 + rng.uniform(-5, 5, size=2)
    centre = 500.0 + rng.uniform(-10, 10, size=2)
    return dict(R=rot, T=pos, f=focal, c=centre, w=1000, h=1000)


def world_to_camera(points: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``(..., 3)`` world points -> camera coordinates ``R (X - T)``."""
    return (points - np.asarray(T).reshape(3)) @ np.asarray(R).T


def camera_to_pixel(points: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``(..., 3)`` camera points -> ``(..., 2)`` pixels (no lens distortion)."""
    return points[..., :2] / points[..., 2:] * np.asarray(f).reshape(2) + np.asarray(c).reshape(2)
