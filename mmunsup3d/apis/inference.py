"""High-level inference: build a lifter from a config and lift pixel keypoints to 3D."""
import os
import os.path as osp
from typing import Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config

from ..structures.chirality import leg_handedness
from ..utils.checkpoint import load_checkpoint_strict

__all__ = ['init_lifter', 'lift_keypoints', 'chirality_rate', 'degenerate_poses', 'MAX_ABS_COORD',
           'MIN_POSE_THICKNESS']


#: Parts of an ``Unsup3DLifter`` that only training uses: inference builds the lifter alone
#: (the plain camera sampler replaces one that needs the elevation predictor).
_TRAINING_ONLY = dict(discriminator=None, temporal_discriminator=None, adapter=None,
                      elevation_net=None, temporal_gan_loss=None, adapter_gan_loss=None,
                      adapter_reg_loss=None, cycle_losses=[], disc_auxiliary_losses=[],
                      camera_sampler=dict(type='RandomOrbitCameraSampler'))


def _load_config(config: Union[str, Config]) -> Config:
    if isinstance(config, Config):
        return config.copy()
    if not isinstance(config, str):
        raise TypeError(f'config must be a path or a Config, got {type(config)}')
    if not osp.isfile(config):
        raise FileNotFoundError(f'Config not found: {config}')
    return Config.fromfile(config)


def _is_url(value: str) -> bool:
    return '://' in value


def _is_zoo_name(value: str) -> bool:
    """A bare name (no path separator, no file extension) that is not an existing file."""
    return (not osp.exists(value) and not _is_url(value) and '/' not in value
            and os.sep not in value and not value.endswith(('.py', '.pth', '.pt')))


def init_lifter(config: Union[str, Config],
                checkpoint: Optional[str] = None,
                device: Union[str, torch.device] = 'cpu',
                cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build an :class:`Unsup3DLifter` for inference and load its weights.

    The discriminator(s), domain adapter and elevation predictor are not built: inference
    needs the lifter only, so lifter-only (published) checkpoints and full training
    checkpoints both load. The checkpoint is unpickled safely (``weights_only=True`` with the
    allow-list) and the lifter's weights strictly: a missing, unexpected or mis-shaped
    ``lifter.*`` key is an error.

    Args:
        config: config path, :class:`Config`, or a zoo model name (see
            :func:`mmunsup3d.utils.zoo.list_models`); with a name the entry's config is used and
            ``checkpoint`` defaults to its downloaded, sha256-verified weights.
        checkpoint: checkpoint path, zoo name or ``http(s)://`` / ``file://`` URL (downloaded
            and verified by :func:`mmunsup3d.utils.zoo.download_checkpoint`); ``None`` keeps
            random weights (unless ``config`` is a zoo name).
        device: torch device.
        cfg_options: overrides merged into the config.

    Returns:
        The model in eval mode, with the config in ``model.cfg`` (and, with a checkpoint, its
        ``meta`` in ``model.checkpoint_meta``).

    Raises:
        FileNotFoundError: missing config or checkpoint.
        UnsafeCheckpointError: the checkpoint references objects outside the allow-list.
        RuntimeError: the checkpoint is corrupt or not a checkpoint.
        CheckpointMismatchError: (a ``ValueError``) its lifter does not fit the config; the
            message names the keys and both shapes.
    """
    from mmpose.registry import MODELS
    from ..utils import register_all_modules
    register_all_modules(init_default_scope=False)
    if isinstance(config, str) and _is_zoo_name(config):
        from ..utils.zoo import download_checkpoint, resolve_model
        info = resolve_model(config)
        if checkpoint is None:
            checkpoint = download_checkpoint(config)
        config = info['config']
    if isinstance(checkpoint, str) and (_is_url(checkpoint) or _is_zoo_name(checkpoint)):
        from ..utils.zoo import download_checkpoint
        checkpoint = download_checkpoint(checkpoint)
    cfg = _load_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = cfg.model.copy()
    for key, value in _TRAINING_ONLY.items():
        if key in model_cfg:
            model_cfg[key] = value
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        # Only what predict uses (model.inference_modules: the lifter) must be in the file;
        # half-precision weights are cast to the model's dtype.
        ckpt = load_checkpoint_strict(model, checkpoint, map_location='cpu')
        model.checkpoint_meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    model.cfg = cfg
    return model.to(device).eval()


# Largest |coordinate| accepted, in pixels: far beyond any image, small enough that float32
# normalisation keeps full precision (a value past it is a unit or parsing mistake upstream).
MAX_ABS_COORD = 1e6


def _as_numeric_array(value, what: str) -> np.ndarray:
    """``value`` (array-like or tensor) as a float32 array; bool, complex, strings refused."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bool or value.is_complex():
            raise ValueError(f'{what} must be real numbers, got a tensor of dtype {value.dtype}')
        value = value.numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in 'iuf':
        raise ValueError(f'{what} must be real numbers (integer or float), got dtype '
                         f'{arr.dtype}')
    return arr.astype(np.float32)


def _check_keypoints(kpts: np.ndarray, num_joints: int) -> None:
    """Raise ``ValueError`` naming the first bad pose of ``(N, J, 2)`` pixel keypoints.

    A live pipeline sends one or a few poses per call, so NumPy calls, not arithmetic, are
    what costs here: one combined pass accepts every finite pose within range, and the
    per-check search for the first bad value runs only when it failed.
    """
    if kpts.ndim != 3 or kpts.shape[1:] != (num_joints, 2):
        raise ValueError(f'keypoints must have shape (N, {num_joints}, 2) (pixels, Human3.6M '
                         f'joint order), got {kpts.shape}')
    if len(kpts) == 0:
        return
    # (N,) shared by the range and the extent checks; NaN and inf propagate through max, and
    # fail the comparison like a value out of range.
    abs_max = np.abs(kpts).max(axis=(1, 2))
    if not (abs_max <= MAX_ABS_COORD).all():
        _raise_bad_value(kpts, abs_max)
    degenerate = _degenerate(kpts.astype(np.float64), abs_max.astype(np.float64))
    if degenerate.any():
        i = int(np.flatnonzero(degenerate)[0])
        raise ValueError(f'keypoints of sample {i} are degenerate: {_degeneracy(kpts[i])}; its '
                         '2D scale normalisation is meaningless, so it cannot be lifted')


def _raise_bad_value(kpts: np.ndarray, abs_max: np.ndarray) -> None:
    """The error for ``(N, J, 2)`` keypoints holding NaN/inf (first) or a value out of range."""
    finite = np.isfinite(kpts).all(-1)
    if not finite.all():
        bad = np.argwhere(~finite)
        raise ValueError(f'keypoints contain NaN or inf (first at sample {bad[0][0]}, joint '
                         f'{bad[0][1]})')
    i = int(np.flatnonzero(abs_max > MAX_ABS_COORD)[0])
    raise ValueError(f'keypoints of sample {i} exceed |{MAX_ABS_COORD:g}| px (max '
                     f'{abs_max[i]:g}); expected pixel coordinates')


# A pose thinner than this fraction of its length (smallest over largest spread of its joints)
# has all joints on one line: the embedded mocap, seen from any azimuth, stays above 6 %.
MIN_POSE_THICKNESS = 1e-3


def _pose_spread(kpts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Extent and thickness of ``(N, J, 2)`` poses.

    Returns:
        ``(extent (N,), thickness (N,))``: the largest per-axis range of the joints, and the
        ratio of the smallest to the largest standard deviation of the joints over all
        directions (the square root of the eigenvalue ratio of their 2 x 2 covariance; 0 when
        every joint lies on one line).
    """
    k = kpts.astype(np.float64, copy=False)
    # np.ptp and np.mean without their Python-level wrappers (np.mean is this sum / count,
    # bit for bit): at one pose per call the wrappers cost more than the arithmetic.
    num = k.shape[1]
    extent = (k.max(1) - k.min(1)).max(-1)
    c = k - np.add.reduce(k, 1, keepdims=True) / num
    cx, cy = c[..., 0], c[..., 1]
    sxx, syy, sxy = (np.add.reduce(cx * cx, -1) / num, np.add.reduce(cy * cy, -1) / num,
                     np.add.reduce(cx * cy, -1) / num)
    mid = (sxx + syy) / 2
    rad = np.sqrt(((sxx - syy) / 2) ** 2 + sxy ** 2)
    big = mid + rad
    small = np.maximum(mid - rad, 0.0)
    thickness = np.sqrt(np.divide(small, big, out=np.zeros_like(big), where=big > 0))
    return extent, thickness


def _is_tiny(abs_max: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """``(N,)``: the extent is about 0 (a few dozen float32 steps of the coordinates).

    Args:
        abs_max: ``(N,)`` largest ``|coordinate|`` of each pose.
        extent: ``(N,)`` its largest per-axis range.
    """
    return extent <= np.maximum(1e-6, 1e-5 * abs_max)


def _degenerate(kpts: np.ndarray, abs_max: np.ndarray) -> np.ndarray:
    """:func:`degenerate_poses` of ``(N, J, 2)`` float64 poses with their ``(N,)`` ``abs_max``."""
    extent, thickness = _pose_spread(kpts)
    return _is_tiny(abs_max, extent) | (thickness < MIN_POSE_THICKNESS)


def degenerate_poses(keypoints: np.ndarray) -> np.ndarray:
    """Poses whose 2D scale normalisation is meaningless: they cannot be lifted.

    A pose is degenerate when its extent is about 0 (every joint at one point, within float32
    precision of its coordinates) or when all its joints lie on one line (thickness below
    :data:`MIN_POSE_THICKNESS`; this includes all joints but one at one point).

    Args:
        keypoints: ``(N, J, 2)`` finite pixel coordinates.

    Returns:
        ``(N,)`` bool, True for a degenerate pose.
    """
    kpts = np.asarray(keypoints, dtype=np.float64)
    if not len(kpts):
        return np.zeros(0, bool)
    return _degenerate(kpts, np.abs(kpts).max((1, 2)))


def _degeneracy(pose: np.ndarray) -> str:
    """What is degenerate about one ``(J, 2)`` pose (see :func:`degenerate_poses`)."""
    kpts = np.asarray(pose, dtype=np.float64)[None]
    extent, thickness = _pose_spread(kpts)
    if _is_tiny(np.abs(kpts).max((1, 2)), extent)[0]:
        return (f'all {kpts.shape[1]} joints lie at one point ({kpts[0, 0, 0]:g}, '
                f'{kpts[0, 0, 1]:g}) (extent {extent[0]:.3g} px)')
    return (f'all {kpts.shape[1]} joints lie on one line (its thickness is {thickness[0]:.2g} '
            f'of its length, below {MIN_POSE_THICKNESS:g})')


def lift_keypoints(model: torch.nn.Module,
                   keypoints: np.ndarray,
                   scores: Optional[np.ndarray] = None,
                   batch_size: int = 4096) -> np.ndarray:
    """Lift 2D keypoints in pixels to root-relative 3D in the camera frame.

    Normalisation (root-centring, scale) is done here; intrinsics are not needed.

    Args:
        model: a model from :func:`init_lifter`.
        keypoints: ``(N, J, 2)`` pixel coordinates in Human3.6M-17 joint order (NumPy array,
            nested list or tensor; a tensor that requires grad is detached).
        scores: optional ``(N, J)`` confidences in ``[0, 1]``; used by confidence-aware lifters.
        batch_size: samples per forward pass (>= 1).

    Returns:
        ``(N, J, 3)`` float32 root-relative 3D (x right, y down, z forward), in metres scaled
        by the model's ``test_cfg.output_head_root`` prior (or in model units without it).

    Raises:
        ValueError: wrong shape or dtype (bool, complex, strings), NaN/inf, a coordinate beyond
            ``MAX_ABS_COORD`` px, a degenerate pose (all joints at one point or on one line,
            see :func:`degenerate_poses`), scores that do not match or lie outside ``[0, 1]``,
            or ``batch_size < 1``; the message names the first bad sample.
        RuntimeError: the model produced NaN/inf (e.g. a checkpoint holding NaN weights).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or \
            batch_size < 1:
        raise ValueError(f'batch_size must be an integer >= 1, got {batch_size!r}')
    num_joints = getattr(model, 'num_keypoints', 17)
    kpts = _as_numeric_array(keypoints, 'keypoints')
    _check_keypoints(kpts, num_joints)
    sc = None if scores is None else _checked_scores(scores, kpts.shape[:2])
    result = _forward(model, kpts, sc, int(batch_size))
    bad = ~np.isfinite(result).all(axis=(1, 2))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RuntimeError(f'The lifter produced NaN or inf for {int(bad.sum())} of '
                           f'{len(result)} pose(s) (first: sample {i}); the checkpoint may '
                           'hold non-finite weights')
    return result


def _checked_scores(scores, shape: Tuple[int, int]) -> np.ndarray:
    """``scores`` as a float32 ``(N, J)`` array in ``[0, 1]``; ``ValueError`` naming the first
    bad value otherwise."""
    sc = _as_numeric_array(scores, 'scores')
    if sc.shape != shape:
        raise ValueError(f'scores must have shape {shape}, got {sc.shape}')
    if not np.isfinite(sc).all():
        bad = np.argwhere(~np.isfinite(sc))[0]
        raise ValueError(f'scores contain NaN or inf (first at sample {bad[0]}, joint '
                         f'{bad[1]})')
    outside = (sc < 0.0) | (sc > 1.0)
    if outside.any():
        i, j = np.argwhere(outside)[0]
        raise ValueError(f'scores must lie in [0, 1]; sample {i}, joint {j} has '
                         f'{sc[i, j]:g}')
    return sc


def _any_training(model: torch.nn.Module) -> bool:
    """Whether ``model`` or any of its submodules is in training mode (flags only read)."""
    stack = [model]
    while stack:
        module = stack.pop()
        if module is None:  # an optional submodule set to None
            continue
        if module.training:
            return True
        stack.extend(module._modules.values())
    return False


def _first_buffer_device(model: torch.nn.Module) -> torch.device:
    """``next(model.buffers()).device`` (CPU's default device without a buffer), stopping at the
    first buffer instead of setting up ``named_modules``' generators."""
    stack = [model]
    while stack:  # pre-order, children in order: the order of nn.Module.buffers()
        module = stack.pop()
        if module is None:
            continue
        for buf in module._buffers.values():
            if buf is not None:
                return buf.device
        stack.extend(reversed(module._modules.values()))
    return torch.zeros(0).device


def _eval_and_device(model: torch.nn.Module) -> torch.device:
    """Put ``model`` in eval mode and return the device of its first buffer.

    Same result as ``model.eval()`` then ``next(model.buffers()).device``. ``model.eval()``
    sets the flag of every submodule through ``nn.Module.__setattr__``, which took longer than
    the lifter's own forward pass for one pose, so it runs only when some submodule is still
    in training mode. Nothing is cached on the model: a cache could not see a submodule
    replaced, or the model moved, after the first call; reading the flags costs ~20 us.
    """
    if _any_training(model):
        model.eval()
    return _first_buffer_device(model)


def _forward(model: torch.nn.Module, kpts: np.ndarray, scores: Optional[np.ndarray],
             batch_size: int) -> np.ndarray:
    """``model(..., mode='tensor')`` on ``(N, J, 2)`` float32 pixels (+ ``(N, J)`` scores),
    ``batch_size`` samples per pass; returns ``(N, J, 3)`` float32.

    ``kpts`` and ``scores`` are this call's own arrays (:func:`_as_numeric_array` copied them),
    so the tensors share their memory; under ``inference_mode`` no autograd state is recorded.
    """
    device = _eval_and_device(model)
    out = []
    with torch.inference_mode():
        for start in range(0, len(kpts), batch_size):
            stop = start + batch_size
            batch = {'keypoints_2d': torch.from_numpy(kpts[start:stop]).to(device)}
            if scores is not None:
                batch['keypoint_scores'] = torch.from_numpy(scores[start:stop]).to(device)
            out.append(model(batch, mode='tensor').float().cpu().numpy())
    if not out:
        return np.zeros((0, kpts.shape[1], 3), dtype=np.float32)
    # One pass (the usual case) returns the output's own array; several are joined once.
    return out[0] if len(out) == 1 else np.concatenate(out)


def chirality_rate(poses_3d: np.ndarray) -> float:
    """Fraction of 3D poses that are mirror-handed (label-free depth-mirror diagnostic).

    A lifter that landed in the depth-mirrored solution bends almost every knee backwards: its
    rate is close to 1, while real motion capture scores a few percent (see
    :func:`~mmunsup3d.structures.chirality.leg_handedness`; straight legs count as correct).

    Args:
        poses_3d: ``(N, 17, 3)`` Human3.6M-17 poses in a right-handed frame, e.g. the output of
            :func:`lift_keypoints` (any units, root-relative or not; NumPy array, nested list
            or tensor).

    Returns:
        The fraction in ``[0, 1]`` of poses with negative handedness.

    Raises:
        ValueError: not real numbers, a shape other than ``(N, 17, 3)``, no pose (``N = 0``),
            or NaN/inf (the message names how many poses and the first).
    """
    poses = _as_numeric_array(poses_3d, 'poses_3d').astype(np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (17, 3):
        raise ValueError(f'poses_3d must have shape (N, 17, 3) (Human3.6M joint order), got '
                         f'{poses.shape}')
    if len(poses) == 0:
        raise ValueError('poses_3d holds no pose (N = 0); the chirality rate of no poses is '
                         'undefined')
    bad = ~np.isfinite(poses).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f'poses_3d contains NaN or inf in {int(bad.sum())} of {len(poses)} '
                         f'pose(s) (first: pose {int(np.flatnonzero(bad)[0])})')
    return float((leg_handedness(torch.from_numpy(poses)) < 0).double().mean())
