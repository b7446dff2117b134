"""High-level inference: build a lifter from a config and lift pixel keypoints to 3D."""
import os
import os.path as osp
from typing import Optional, Union

import numpy as np
import torch
from mmengine.config import Config

from ..utils.checkpoint import safe_torch_load

__all__ = ['init_lifter', 'lift_keypoints']


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

    The discriminator(s) are not built: inference needs the lifter only, so lifter-only
    (published) checkpoints and full training checkpoints both load.

    Args:
        config: config path, :class:`Config`, or a zoo model name (see
            :func:`mmunsup3d.apis.zoo.list_models`); with a name the entry's config is used and
            ``checkpoint`` defaults to its downloaded, sha256-verified weights.
        checkpoint: checkpoint path, zoo name or ``http(s)://`` / ``file://`` URL (downloaded
            and verified by :func:`mmunsup3d.apis.zoo.download_checkpoint`); ``None`` keeps
            random weights (unless ``config`` is a zoo name).
        device: torch device.
        cfg_options: overrides merged into the config.

    Returns:
        The model in eval mode, with the config in ``model.cfg``.
    """
    from mmpose.registry import MODELS
    from ..utils import register_all_modules
    register_all_modules(init_default_scope=False)
    if isinstance(config, str) and _is_zoo_name(config):
        from .zoo import download_checkpoint, resolve_model
        info = resolve_model(config)
        if checkpoint is None:
            checkpoint = download_checkpoint(config)
        config = info['config']
    if isinstance(checkpoint, str) and (_is_url(checkpoint) or _is_zoo_name(checkpoint)):
        from .zoo import download_checkpoint
        checkpoint = download_checkpoint(checkpoint)
    cfg = _load_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = cfg.model.copy()
    for key in ('discriminator', 'temporal_discriminator', 'adapter'):
        if key in model_cfg:
            model_cfg[key] = None
    model_cfg.setdefault('loss_weights', {})
    model_cfg['loss_weights'] = {
        k: (0.0 if k in ('loss_adv', 'loss_temporal', 'loss_adapter') else v)
        for k, v in dict(model_cfg['loss_weights']).items()
    }
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        ckpt = safe_torch_load(checkpoint, map_location='cpu')
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise RuntimeError(f'Checkpoint {checkpoint} holds no state_dict')
        own = model.state_dict()
        state = {k: v for k, v in state.items() if k in own}
        missing = sorted(set(own) - set(state))
        if missing:
            raise KeyError(f'Checkpoint {checkpoint} does not match the config: missing '
                           f'{missing[:5]}{"..." if len(missing) > 5 else ""}')
        for key, value in state.items():
            if value.shape != own[key].shape:
                raise ValueError(f'Checkpoint {checkpoint}: "{key}" has shape '
                                 f'{tuple(value.shape)}, the config expects '
                                 f'{tuple(own[key].shape)}')
        # Half-precision checkpoints are cast to the model's dtype by load_state_dict.
        model.load_state_dict(state, strict=True)
        model.checkpoint_meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    model.cfg = cfg
    return model.to(device).eval()


def lift_keypoints(model: torch.nn.Module,
                   keypoints: np.ndarray,
                   scores: Optional[np.ndarray] = None,
                   batch_size: int = 4096) -> np.ndarray:
    """Lift 2D keypoints in pixels to root-relative 3D in the camera frame.

    Normalisation (root-centring, scale) is done here; intrinsics are not needed.

    Args:
        model: a model from :func:`init_lifter`.
        keypoints: ``(N, J, 2)`` pixel coordinates in Human3.6M-17 joint order.
        scores: optional ``(N, J)`` confidences in ``[0, 1]``; used by confidence-aware lifters.
        batch_size: samples per forward pass.

    Returns:
        ``(N, J, 3)`` float32 root-relative 3D (x right, y down, z forward), in metres scaled
        by the model's ``test_cfg.output_head_root`` prior (or in model units without it).

    Raises:
        ValueError: wrong shape, NaN/inf, or scores that do not match.
    """
    kpts = np.asarray(keypoints, dtype=np.float32)
    num_joints = getattr(model, 'num_keypoints', 17)
    if kpts.ndim != 3 or kpts.shape[1:] != (num_joints, 2):
        raise ValueError(f'keypoints must have shape (N, {num_joints}, 2) (pixels, Human3.6M '
                         f'joint order), got {kpts.shape}')
    if not np.isfinite(kpts).all():
        bad = np.argwhere(~np.isfinite(kpts).all(-1))
        raise ValueError(f'keypoints contain NaN or inf (first at sample {bad[0][0]}, joint '
                         f'{bad[0][1]})')
    inputs = {}
    if scores is not None:
        sc = np.asarray(scores, dtype=np.float32)
        if sc.shape != kpts.shape[:2]:
            raise ValueError(f'scores must have shape {kpts.shape[:2]}, got {sc.shape}')
        if not np.isfinite(sc).all():
            raise ValueError('scores contain NaN or inf')
        inputs['keypoint_scores'] = sc
    device = next(iter(model.buffers()), torch.zeros(0)).device
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(kpts), batch_size):
            batch = {'keypoints_2d': torch.from_numpy(kpts[start:start + batch_size]).to(device)}
            if 'keypoint_scores' in inputs:
                batch['keypoint_scores'] = torch.from_numpy(
                    inputs['keypoint_scores'][start:start + batch_size]).to(device)
            out.append(model(batch, mode='tensor').float().cpu().numpy())
    if not out:
        return np.zeros((0, num_joints, 3), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)
