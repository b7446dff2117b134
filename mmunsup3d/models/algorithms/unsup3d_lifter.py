"""Unsupervised 3D lifting with geometric self-supervision (Chen et al., CVPR 2019)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import math

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from ...apis.keypoint_convert import H36M_PARENTS
from ..geometry import (lift_to_3d, normalize_2d, normalize_2d_masked, project, retilt_rotations,
                        root_center, rotate, sample_rotations)

# Human3.6M-17 left/right joint pairs, used for horizontal-flip augmentation.
H36M_FLIP_PAIRS = ((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16))
# Human3.6M-17 left/right bone pairs ((parent, joint) of each side): hip, thigh, shin, shoulder,
# upper arm, forearm.
H36M_SYMMETRIC_BONES = tuple(
    ((H36M_PARENTS[a], a), (H36M_PARENTS[b], b)) for a, b in H36M_FLIP_PAIRS)


def _flip_indices(num_keypoints: int, pairs: Sequence[Tuple[int, int]]) -> List[int]:
    idx = list(range(num_keypoints))
    for a, b in pairs:
        idx[a], idx[b] = b, a
    return idx


def _unwrap(module: nn.Module) -> nn.Module:
    """The bare module behind a (Separate)DistributedDataParallel wrapper."""
    return module.module if hasattr(module, 'module') and not isinstance(
        module, BaseModel) else module


def _frozen_logits(disc: nn.Module, poses: Tensor) -> Tensor:
    """Score ``poses`` for a generator loss without leaving gradients in ``disc``.

    Runs the bare module (outside its DDP wrapper: no gradient of it is synchronised) with its
    parameters frozen; gradients still flow to ``poses`` and so to the lifter.
    """
    disc = _unwrap(disc)
    req = [p.requires_grad for p in disc.parameters()]
    disc.requires_grad_(False)
    try:
        return disc(poses)
    finally:
        for p, r in zip(disc.parameters(), req):
            p.requires_grad_(r)


def torso_elevation(pose: Tensor, root_idx: int = 0, up_idx: int = 8) -> Tensor:
    """Camera elevation implied by a camera-frame 3D pose whose torso is upright.

    With the camera looking down by ``e`` the world up axis is ``(0, -cos e, -sin e)`` in camera
    coordinates (y down, z forward), so ``e = atan2(-u_z, -u_y)`` for the torso direction ``u``
    (root -> ``up_idx``). A depth-mirrored pose gives ``-e``.

    Args:
        pose: ``(B, J, 3)`` camera-frame poses.
        root_idx: root joint (pelvis).
        up_idx: upper-torso joint (thorax).

    Returns:
        ``(B,)`` elevations in radians.
    """
    up = pose[:, up_idx] - pose[:, root_idx]
    return torch.atan2(-up[:, 2], -up[:, 1])


def bone_asymmetry(pose: Tensor,
                   bone_pairs: Sequence[Tuple[Tuple[int, int], Tuple[int, int]]] = (
                       H36M_SYMMETRIC_BONES),
                   eps: float = 1e-8) -> Tensor:
    """Relative length difference of left/right bones, a scale-free symmetry prior.

    ``|l_L - l_R| / ((l_L + l_R) / 2)`` averaged over the bone pairs. People are left/right
    symmetric, so a correct lift scores near 0. Under perspective the depth-mirrored lift of a
    2D pose is not symmetric: on the embedded mocap's test poses, lifting with the true depths
    gives 0.034, with the mirrored depths 0.075, with flat depth 0.166 (c = 10; the command is in
    configs/unsup3d/README.md).

    Args:
        pose: ``(B, J, 3)`` poses.
        bone_pairs: ``((a, b), (c, d))`` pairs of symmetric bones ``a-b`` and ``c-d``.
        eps: guards the division for degenerate poses.

    Returns:
        ``(B,)`` mean relative asymmetry per pose.
    """
    idx = torch.as_tensor(bone_pairs, device=pose.device)  # (P, 2, 2)
    bones = pose[:, idx[..., 0]] - pose[:, idx[..., 1]]  # (B, P, 2, 3)
    length = bones.norm(dim=-1)  # (B, P, 2)
    diff = (length[..., 0] - length[..., 1]).abs()
    return (2.0 * diff / (length.sum(-1) + eps)).mean(-1)


def scale_aligned_error(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean per-joint error after the optimal scaling of ``pred`` (N-MPJPE as a loss).

    Args:
        pred: ``(B, J, 3)`` root-centred predictions.
        target: ``(B, J, 3)`` root-centred targets.

    Returns:
        ``(B,)`` mean joint error per sample, in the target's unit.
    """
    scale = (pred * target).sum((-1, -2)) / (pred * pred).sum((-1, -2)).clamp_min(eps)
    return (pred * scale[:, None, None] - target).norm(dim=-1).mean(-1)


@MODELS.register_module()
class Unsup3DLifter(BaseModel):
    """Lift 2D poses to 3D without 3D labels: lift, rotate, project, lift again, rotate back.

    One training step (``train_step``):

    1. ``x`` (normalised 2D, root at 0, head-root distance 1/c) -> lifter -> depths -> ``X1``.
    2. ``X1`` is root-centred and rotated by a random virtual camera ``R`` about its root, put
       back at the root's depth and projected: ``y``, renormalised by factor ``s``.
    3. ``y`` -> lifter -> ``X2`` (root-centred). 3D consistency: ``X2 / s ~ R X1``.
    4. ``X2 / s`` is rotated back by ``R^T``, placed at the root and projected. 2D consistency:
       this reprojection ~ ``x``.
    5. The 2D discriminator scores ``y`` against real ``x`` (and, optionally, a temporal
       discriminator scores consecutive pairs); the lifter is trained to fool it.

    Generator (lifter) and discriminator(s) are updated separately through an
    :class:`~mmengine.optim.OptimWrapperDict` whose keys are this model's attribute names
    (``lifter``, ``discriminator``...). Without a discriminator a plain ``OptimWrapper`` is fine.

    Args:
        lifter: config of the lifting network (maps ``(B, J, C)`` to ``(B, J)`` depth offsets).
        discriminator: config of the 2D pose discriminator, or ``None`` to train without it.
        temporal_discriminator: config of a discriminator of consecutive-frame pairs
            (``num_frames=2``; Chen et al.'s temporal consistency), or ``None``. Needs the
            dataset's ``with_next=True`` (``keypoints_2d_next``, ``has_next``): real pairs are
            consecutive 2D poses, fake pairs the projections of both lifted frames through the
            same random camera. Used during training only.
        elevation_net: config of a camera-elevation predictor (e.g. ``ElevationPredictor``;
            ElePose's learned prior), or ``None``. With it, each virtual camera first undoes the
            predicted elevation of the input's camera, turns the pose about its upright axis
            (azimuth, ``rotation.max_azimuth_deg``), then views it from an elevation drawn from
            ``N(mean, std)`` of the batch's predictions (detached; clamped to the predictor's
            range), plus a roll in ``±rotation.max_roll_deg``. Trained through the lifter's
            losses; put it under the lifter's optimizer (``modules=['lifter', 'elevation_net']``).
            It is trained by regressing the elevation implied by the first lift's torso
            (``loss_elevation``, target detached), not through the rotations: trained by the
            discriminator through the un-tilt it tilted the orbit axis towards the optical axis
            (azimuth changes become easy in-plane rolls) and ran to the top of its range.
        adapter: config of a 2D domain adapter (``PoseDomainAdapter2D``), or ``None``. With it
            and a batch carrying ``extra_keypoints_2d`` (+ ``extra_keypoint_scores``; see
            ``WithExtra2DDataset``), the extra poses (another convention, e.g. COCO-17
            detections) are adapted into this model's 2D space and (detached) join the
            unsupervised cycle as additional training poses; the adapter itself is trained to
            make the 2D discriminator call them real (``loss_adapter``) with a penalty on its
            learned residual (``loss_adapter_reg``), and the discriminator sees them as fakes.
            No correspondence between the two datasets is used.
        use_scores: feed per-joint confidences to the lifter as a third input channel (the
            lifter's ``in_channels`` must be 3). Scores come from the batch's
            ``keypoint_scores`` (1 when absent); synthetic projections inherit their source's
            scores. Low-confidence joints are not moved by the model: fill them first
            (:func:`~mmunsup3d.apis.fill_low_confidence`, done by ``lift_keypoints`` for COCO
            input) and pass their low score so the lifter knows they are guesses.
        num_keypoints: number of joints J.
        root_idx: root joint index (pelvis).
        head_idx: head joint used for scale normalisation.
        up_idx: joint whose direction from the root is the body's up axis (thorax), for the
            elevation prior's target.
        depth_offset: ``c`` in ``z = max(min_depth, d + c)``.
        min_depth: smallest depth of a lifted joint.
        scale_mode: 2D scale normalisation, ``'head'`` (paper) or ``'rms'`` (robust to poses
            whose trunk points at the camera; see :func:`normalize_2d`).
        rotation: random camera ranges: ``max_azimuth_deg``, ``max_elevation_deg``,
            ``max_roll_deg`` (``None`` = half the elevation range).
        loss_weights: weights of ``loss_2d`` (reprojection), ``loss_3d`` (consistency),
            ``loss_adv`` (generator adversarial term), ``loss_temporal``, ``loss_sup``
            (supervised 3D term, only on samples that carry 3D; 0 in the unsupervised setting),
            ``loss_adapter`` and ``loss_adapter_reg`` (domain adapter's adversarial term and the
            squared norm of its residual in units of the person's size), ``loss_elevation``
            (elevation predictor) and ``loss_symmetry`` (left/right bone-length difference of
            the first lift, :func:`bone_asymmetry`; beyond the paper, 0 by default).
        flip_pairs: left/right joint pairs for flip augmentation.
        train_cfg: ``flip_prob`` (probability of mirroring a training 2D pose, a valid 2D pose
            augmentation that needs no 3D); ``disc_r1_weight`` (weight of the R1 gradient
            penalty on real poses, ``gamma/2 * |grad D(x)|^2``; 0 disables it), which keeps the
            discriminator from over-fitting a small set of real poses; ``keypoint_noise``
            (``None`` or a dict with ``std``, ``outlier_prob``, ``outlier_std``,
            ``drop_prob``, all relative to the pose's RMS size): detector-like corruption of
            the real 2D poses of a training batch (Gaussian jitter, occasional gross errors,
            dropped joints collapsed onto their parent), with scores that fall with the error
            (0 for dropped joints), for confidence-aware training; ``adapter_score_thr``:
            extra (adapter) joints scoring below it count as missing.
        test_cfg: ``output_head_root`` (metres): predictions are rescaled so the 3D head-root
            distance equals it; ``None`` keeps model units. Only plain MPJPE depends on it.
        data_preprocessor: MMEngine data preprocessor config.
        init_cfg: MMEngine initialisation config.
    """

    #: Submodules a test / inference forward pass runs (``predict_3d`` uses the lifter only):
    #: checkpoint loading for evaluation and inference requires exactly their weights
    #: (:func:`mmunsup3d.utils.checkpoint.inference_prefixes`), so lifter-only checkpoints fit.
    inference_modules: Tuple[str, ...] = ('lifter', )

    def __init__(self,
                 lifter: dict,
                 discriminator: Optional[dict] = None,
                 temporal_discriminator: Optional[dict] = None,
                 elevation_net: Optional[dict] = None,
                 adapter: Optional[dict] = None,
                 use_scores: bool = False,
                 num_keypoints: int = 17,
                 root_idx: int = 0,
                 head_idx: int = 10,
                 up_idx: int = 8,
                 depth_offset: float = 10.0,
                 min_depth: float = 1.0,
                 scale_mode: str = 'head',
                 rotation: Optional[dict] = None,
                 loss_weights: Optional[Dict[str, float]] = None,
                 flip_pairs: Sequence[Tuple[int, int]] = H36M_FLIP_PAIRS,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='BaseDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.lifter = MODELS.build(lifter)
        self.discriminator = MODELS.build(discriminator) if discriminator else None
        self.temporal_discriminator = MODELS.build(temporal_discriminator) \
            if temporal_discriminator else None
        self.elevation_net = MODELS.build(elevation_net) if elevation_net else None
        self.adapter = MODELS.build(adapter) if adapter else None
        if self.adapter is not None and self.discriminator is None:
            raise ValueError('The domain adapter is trained against the 2D discriminator; '
                             'give a discriminator')
        self.use_scores = use_scores
        lifter_channels = getattr(self.lifter, 'in_channels', None)
        if lifter_channels is not None and lifter_channels != (3 if use_scores else 2):
            raise ValueError(f'use_scores={use_scores} needs a lifter with in_channels='
                             f'{3 if use_scores else 2}, got {lifter_channels}')
        self.num_keypoints = num_keypoints
        self.root_idx = root_idx
        self.head_idx = head_idx
        self.up_idx = up_idx
        self.depth_offset = depth_offset
        self.min_depth = min_depth
        if scale_mode not in ('head', 'rms'):
            raise ValueError(f"scale_mode must be 'head' or 'rms', got {scale_mode!r}")
        self.scale_mode = scale_mode
        self.rotation = dict(max_azimuth_deg=140.0, max_elevation_deg=20.0, max_roll_deg=None)
        self.rotation.update(rotation or {})
        weights = dict(loss_2d=1.0, loss_3d=1.0, loss_adv=1.0, loss_temporal=1.0, loss_sup=0.0,
                       loss_adapter=1.0, loss_adapter_reg=1.0, loss_elevation=1.0,
                       loss_symmetry=0.0)
        unknown = set(loss_weights or {}) - set(weights)
        if unknown:
            raise KeyError(f'Unknown loss weight(s) {sorted(unknown)}; '
                           f'known: {sorted(weights)}')
        weights.update(loss_weights or {})
        if weights['loss_adv'] > 0 and self.discriminator is None:
            raise ValueError('loss_weights.loss_adv > 0 needs a discriminator; set it to 0 '
                             'for self-consistency-only training')
        self.loss_weights = weights
        self.train_cfg = dict(flip_prob=0.0, disc_r1_weight=0.0, keypoint_noise=None,
                              adapter_score_thr=0.05)
        self.train_cfg.update(train_cfg or {})
        self.test_cfg = dict(output_head_root=None)
        self.test_cfg.update(test_cfg or {})
        self.register_buffer(
            'flip_index', torch.tensor(_flip_indices(num_keypoints, flip_pairs)),
            persistent=False)
        # A dropped joint (training noise) collapses onto its parent.
        parents = H36M_PARENTS if num_keypoints == 17 else (-1, ) * num_keypoints
        self.register_buffer(
            'parent_index', torch.tensor([max(p, 0) for p in parents]), persistent=False)

    # ------------------------------------------------------------------ helpers
    def _check_keypoints(self, kpts: Tensor) -> None:
        if kpts.ndim < 3 or kpts.shape[-2:] != (self.num_keypoints, 2):
            raise ValueError(f'{type(self).__name__} expects 2D keypoints of shape '
                             f'(B, {self.num_keypoints}, 2), got {tuple(kpts.shape)}')

    def _normalize(self, keypoints_2d: Tensor) -> Tuple[Tensor, Tensor]:
        return normalize_2d(keypoints_2d, self.root_idx, self.head_idx, self.depth_offset,
                            mode=self.scale_mode)

    def normalize(self, keypoints_2d: Tensor) -> Tensor:
        """``(..., J, 2)`` pixels -> root-centred, scale-normalised (``scale_mode``)."""
        return self._normalize(keypoints_2d)[0]

    def lift(self, x: Tensor, scores: Optional[Tensor] = None,
             lifter: Optional[nn.Module] = None) -> Tensor:
        """``(B, J, 2)`` normalised 2D (+ ``(B, J)`` scores) -> ``(B, J, 3)`` 3D (model units).

        ``scores`` are used only by confidence-aware models (``use_scores``); ``None`` = all 1.
        """
        lifter = self.lifter if lifter is None else lifter
        inp = x
        if self.use_scores:
            scores = x.new_ones(x.shape[:-1]) if scores is None else scores.to(x.dtype)
            inp = torch.cat([x, scores.unsqueeze(-1)], -1)
        return lift_to_3d(x, lifter(inp), self.depth_offset, self.min_depth)

    def corrupt(self, x: Tensor, scores: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Detector-like corruption of normalised 2D poses (``train_cfg.keypoint_noise``).

        Each joint gets Gaussian jitter (``std`` x the pose's RMS size); with ``outlier_prob``
        a gross error (``outlier_std``) instead; with ``drop_prob`` it is dropped: moved onto
        its parent joint (the root is never dropped) with score 0. Scores are
        ``exp(-err^2 / (8 std^2))`` for the jitter, so they fall as the error grows, times the
        incoming scores. The result is re-normalised. Without ``keypoint_noise`` the input is
        returned unchanged and no random number is drawn.

        Args:
            x: ``(B, J, 2)`` normalised poses.
            scores: ``(B, J)`` incoming scores, ``None`` = all 1.

        Returns:
            ``(corrupted (B, J, 2), scores (B, J))``.
        """
        scores = x.new_ones(x.shape[:-1]) if scores is None else scores.to(x.dtype)
        cfg = self.train_cfg.get('keypoint_noise')
        if not cfg:
            return x, scores
        std = float(cfg.get('std', 0.0))
        size = x.pow(2).sum(-1).mean(-1).sqrt()[:, None, None]  # (B, 1, 1) RMS size
        noise = torch.randn_like(x) * std
        outlier_prob = float(cfg.get('outlier_prob', 0.0))
        if outlier_prob > 0:
            outlier = torch.rand(x.shape[:-1], device=x.device) < outlier_prob
            noise = torch.where(outlier[..., None],
                                torch.randn_like(x) * float(cfg.get('outlier_std', 0.3)), noise)
        # The root is the reference of the normalisation: its jitter would only shift the rest.
        noise[:, self.root_idx] = 0.0
        err = noise.norm(dim=-1)
        conf = torch.exp(-err.pow(2) / (8.0 * std * std)) if std > 0 else torch.ones_like(err)
        noisy = x + noise * size
        drop_prob = float(cfg.get('drop_prob', 0.0))
        if drop_prob > 0:
            drop = torch.rand(x.shape[:-1], device=x.device) < drop_prob
            drop[:, self.root_idx] = False
            noisy = torch.where(drop[..., None], noisy[:, self.parent_index], noisy)
            conf = torch.where(drop, torch.zeros_like(conf), conf)
        return self.normalize(noisy), scores * conf

    def adapt_extra(self, keypoints: Tensor,
                    scores: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Adapt extra 2D poses (another convention) into this model's normalised 2D.

        Args:
            keypoints: ``(B, J_src, 2)`` pixel keypoints (missing joints anywhere, score 0).
            scores: ``(B, J_src)`` confidences; ``None`` = all 1.

        Returns:
            ``(adapted (B, J, 2) normalised, residual (B, J, 2))``; the residual is the
            adapter's learned correction in normalised units.
        """
        if self.adapter is None:
            raise RuntimeError('This model has no adapter')
        scores = keypoints.new_ones(keypoints.shape[:-1]) if scores is None else scores
        valid = scores >= self.train_cfg.get('adapter_score_thr', 0.05)
        src, _ = normalize_2d_masked(keypoints, valid, c=self.depth_offset)
        adapted, residual = self.adapter(src, scores * valid, return_residual=True)
        return self.normalize(adapted), residual

    def _flip(self, x: Tensor) -> Tensor:
        """Mirror normalised 2D poses horizontally and swap left/right joints."""
        flipped = x[..., self.flip_index, :].clone()
        flipped[..., 0] = -flipped[..., 0]
        return flipped

    def _augment(self, x: Tensor, mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Flip each pose with probability ``flip_prob`` (or where ``mask`` says so)."""
        if mask is None:
            prob = self.train_cfg.get('flip_prob', 0.0)
            if prob <= 0:  # no random draw: keeps the RNG stream of flip-free configs
                return x, torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
            mask = torch.rand(x.shape[0], device=x.device) < prob
        if not mask.any():
            return x, mask
        return torch.where(mask[:, None, None], self._flip(x), x), mask

    def _flip_scores(self, scores: Tensor, mask: Tensor) -> Tensor:
        """Permute ``(B, J)`` scores like :meth:`_augment` permuted the joints."""
        if not mask.any():
            return scores
        return torch.where(mask[:, None], scores[:, self.flip_index], scores)

    # ------------------------------------------------------------------ the cycle
    def draw_rotations(self, x: Tensor) -> Tensor:
        """Draw the random virtual cameras of a training batch.

        The cycle's only random draw besides flips and dropout. Tests override it to tie each
        sample's rotation to the sample itself (multi-process vs. single-process parity).

        Args:
            x: ``(B, J, 2)`` normalised 2D poses.

        Returns:
            ``(B, 3, 3)`` rotation matrices (``rotation`` ranges).
        """
        if self.elevation_net is None:
            return sample_rotations(x.shape[0], device=x.device, dtype=x.dtype, **self.rotation)
        return self.draw_rotations_around_elevation(x)

    def draw_rotations_around_elevation(self, x: Tensor) -> Tensor:
        """ElePose-style cameras: undo the predicted elevation, orbit, re-tilt (see ``__init__``).

        The rotations are built from detached predictions; :meth:`cycle` adds the predictor's
        own loss (``loss_elevation``: regression onto the elevation implied by the lifted
        torso, :func:`torso_elevation`). The new elevations are drawn from the batch
        statistics of the predictions.
        """
        net = _unwrap(self.elevation_net)
        self._elevation_pred = self.elevation_net(x)  # (B,) radians, with gradient
        elev = self._elevation_pred.detach()
        self._elevation_log = elev
        batch = x.shape[0]
        mean = elev.mean()
        std = elev.std() if batch > 1 else torch.zeros_like(mean)
        target = (mean + std * torch.randn(batch, device=x.device, dtype=x.dtype)).clamp(
            net.low, net.high)
        u = torch.rand(batch, 2, device=x.device, dtype=x.dtype) * 2.0 - 1.0
        max_roll = self.rotation['max_roll_deg']
        if max_roll is None:
            max_roll = self.rotation['max_elevation_deg'] / 2.0
        azimuth = u[:, 0] * math.radians(self.rotation['max_azimuth_deg'])
        roll = u[:, 1] * math.radians(max_roll)
        return retilt_rotations(elev, target, azimuth, roll)

    def cycle(self, x: Tensor, scores: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Run lift -> rotate -> project -> lift -> rotate back on a batch.

        Args:
            x: ``(B, J, 2)`` normalised 2D poses.
            scores: ``(B, J)`` confidences for confidence-aware lifters (``None`` = all 1);
                the synthetic projection of a pose inherits its scores.

        Returns:
            dict with ``pose_3d`` (``(B, J, 3)`` first lift, root-centred), ``fake_2d``
            (``(B, J, 2)`` normalised synthetic projections), ``loss_2d`` and ``loss_3d``
            (``(B,)`` per-sample errors) and ``rot`` (``(B, 3, 3)`` the virtual cameras).
        """
        x3d = self.lift(x, scores)
        root = x3d[:, self.root_idx:self.root_idx + 1]  # (B, 1, 3): (0, 0, z_root)
        pose = x3d - root
        rot = self.draw_rotations(x)
        pose_rot = rotate(pose, rot)
        # Same root depth as the first lift: with R = I the projection reproduces x exactly.
        # Depths are clamped at min_depth as in the lift, so a wild early prediction cannot
        # project to near-infinite coordinates.
        fake, scale = self._normalize(project(pose_rot + root, self.min_depth))
        pose2 = root_center(self.lift(fake, scores), self.root_idx) / scale[:, None, None]
        loss_3d = (pose2 - pose_rot).norm(dim=-1).mean(-1)
        reproj = project(rotate(pose2, rot.transpose(-1, -2)) + root, self.min_depth)
        loss_2d = (reproj - x).norm(dim=-1).mean(-1)
        out = dict(pose_3d=pose, fake_2d=fake, loss_2d=loss_2d, loss_3d=loss_3d, rot=rot)
        elev = getattr(self, '_elevation_pred', None)
        if elev is not None:
            self._elevation_pred = None
            out['loss_elevation'] = F.smooth_l1_loss(
                elev, torso_elevation(pose.detach(), self.root_idx, self.up_idx),
                reduction='none', beta=0.1)
        return out

    def generator_losses(
            self, inputs: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor], Optional[Tensor], Tensor]:
        """Losses of the lifter.

        Returns:
            ``(losses, fake_2d, real_2d)``: the loss dict, the detached synthetic 2D poses for the
            discriminator step (projections, plus adapted extra poses when an adapter is used;
            ``None`` when the cycle is not run, i.e. purely supervised training) and the
            normalised (augmented, corrupted) real 2D poses.
        """
        x, flip = self._augment(self.normalize(inputs['keypoints_2d']))
        scores = inputs.get('keypoint_scores')
        if scores is not None:
            scores = self._flip_scores(scores.to(x.dtype), flip)
        x, scores = self.corrupt(x, scores)
        batch = x.shape[0]
        w = self.loss_weights
        use_adv = self.discriminator is not None and w['loss_adv'] > 0
        use_temporal = self.temporal_discriminator is not None and w['loss_temporal'] > 0
        if use_temporal and 'keypoints_2d_next' not in inputs:
            raise KeyError('temporal_discriminator needs consecutive frames: build the '
                           'training dataset with with_next=True')
        losses: Dict[str, Tensor] = {}
        self._elevation_log = None
        # Extra 2D (another convention/domain) through the adapter: the adapter learns to fool
        # the 2D discriminator; its (detached) output joins the cycle as more training poses.
        adapted = None
        cycle_x, cycle_scores = x, scores
        if self.adapter is not None and 'extra_keypoints_2d' in inputs:
            adapted, residual = self.adapt_extra(inputs['extra_keypoints_2d'],
                                                 inputs.get('extra_keypoint_scores'))
            logits = _frozen_logits(self.discriminator, adapted)
            losses['loss_adapter'] = w['loss_adapter'] * F.binary_cross_entropy_with_logits(
                logits, torch.ones_like(logits))
            # Residual in units of the person's size (normalised poses are ~1/c tall).
            losses['loss_adapter_reg'] = w['loss_adapter_reg'] * (
                residual * self.depth_offset).pow(2).sum(-1).mean()
            extra, _ = self._augment(adapted.detach())
            cycle_x = torch.cat([x, extra], 0)
            if scores is not None:
                cycle_scores = torch.cat([scores, scores.new_ones(extra.shape[:-1])], 0)
        out = None
        # The cycle costs a second lift; a purely supervised config does not need it.
        if w['loss_2d'] > 0 or w['loss_3d'] > 0 or use_adv or use_temporal:
            out = self.cycle(cycle_x, cycle_scores)
            losses['loss_2d'] = w['loss_2d'] * out['loss_2d'].mean()
            losses['loss_3d'] = w['loss_3d'] * out['loss_3d'].mean()
            if w['loss_symmetry'] > 0:
                losses['loss_symmetry'] = w['loss_symmetry'] * bone_asymmetry(
                    out['pose_3d']).mean()
            if 'loss_elevation' in out:
                losses['loss_elevation'] = w['loss_elevation'] * out['loss_elevation'].mean()
        if use_adv:
            logits = _frozen_logits(self.discriminator, out['fake_2d'])
            losses['loss_adv'] = w['loss_adv'] * F.binary_cross_entropy_with_logits(
                logits, torch.ones_like(logits))
        if use_temporal:
            # The next frame, flipped like this one, seen through the same virtual camera.
            x_next, _ = self._augment(self.normalize(inputs['keypoints_2d_next']), flip)
            scores_next = inputs.get('keypoint_scores_next')
            if scores_next is not None:
                scores_next = self._flip_scores(scores_next.to(x.dtype), flip)
            x_next, scores_next = self.corrupt(x_next, scores_next)
            x3d_next = self.lift(x_next, scores_next)
            root_next = x3d_next[:, self.root_idx:self.root_idx + 1]
            fake_next, _ = self._normalize(
                project(rotate(x3d_next - root_next, out['rot'][:batch]) + root_next,
                        self.min_depth))
            has_next = inputs['has_next'].bool()
            fake_pairs = torch.stack([out['fake_2d'][:batch], fake_next], 1)[has_next]
            real_pairs = torch.stack([x, x_next], 1)[has_next]
            out['fake_pairs'], out['real_pairs'] = fake_pairs.detach(), real_pairs.detach()
            logits = _frozen_logits(self.temporal_discriminator, fake_pairs)
            losses['loss_temporal'] = w['loss_temporal'] * F.binary_cross_entropy_with_logits(
                logits, torch.ones_like(logits)) if logits.numel() else logits.sum()
        if w['loss_sup'] > 0 and 'keypoints_3d' in inputs:
            has_3d = inputs.get('has_3d')
            has_3d = torch.ones(batch, dtype=torch.bool, device=x.device) \
                if has_3d is None else has_3d.bool()
            # Flip and noise are not applied to 3D targets, so supervise the clean pose.
            target = root_center(inputs['keypoints_3d'], self.root_idx)
            if out is not None and self.train_cfg.get('flip_prob', 0.0) <= 0 and \
                    not self.train_cfg.get('keypoint_noise'):
                pose = out['pose_3d'][:batch]
            else:
                pose = root_center(
                    self.lift(self.normalize(inputs['keypoints_2d']),
                              inputs.get('keypoint_scores')), self.root_idx)
            err = scale_aligned_error(pose, target)
            # Mean over labelled samples; 0 (with a graph) when a batch has none.
            losses['loss_sup'] = w['loss_sup'] * (err * has_3d).sum() / has_3d.sum().clamp_min(1)
        if not losses:
            raise ValueError('No loss is active: set a positive loss weight (and give 3D for '
                             'loss_sup)')
        if self._elevation_log is not None:  # logged, not a loss (no "loss" in the name)
            losses['elevation_deg'] = self._elevation_log.mean() * (180.0 / math.pi)
        fake = out['fake_2d'].detach() if out is not None else None
        if adapted is not None:  # the discriminator learns to tell adapted poses from real
            fake = adapted.detach() if fake is None else torch.cat([fake, adapted.detach()], 0)
        # Handed to train_step's temporal-discriminator update (training only).
        self._temporal_pairs = (out['real_pairs'], out['fake_pairs']) if use_temporal else None
        return losses, fake, x

    def discriminator_losses(self, real: Tensor, fake: Tensor,
                             disc: Optional[nn.Module] = None,
                             prefix: str = 'loss_disc') -> Dict[str, Tensor]:
        """BCE losses of a discriminator (default: the 2D one); real and fake in one batch."""
        disc = self.discriminator if disc is None else disc
        r1_weight = self.train_cfg.get('disc_r1_weight', 0.0)
        if r1_weight > 0:
            real = real.detach().requires_grad_(True)
        logits = disc(torch.cat([real, fake], 0))
        real_logits, fake_logits = logits.split([real.shape[0], fake.shape[0]])
        loss_real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        loss_fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        losses = {prefix: 0.5 * (loss_real + loss_fake)}
        if r1_weight > 0:
            grad, = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            losses[f'{prefix}_r1'] = 0.5 * r1_weight * grad.flatten(1).pow(2).sum(1).mean()
        return losses

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> Dict[str, Tensor]:
        """One generator update, then one discriminator update (mmagic-style GAN step)."""
        data = self.data_preprocessor(data, True)
        inputs = data['inputs']
        self._check_keypoints(inputs['keypoints_2d'])
        if isinstance(optim_wrapper, OptimWrapperDict):
            g_wrapper = optim_wrapper['lifter']
            d_wrapper = optim_wrapper['discriminator'] if 'discriminator' in \
                optim_wrapper.keys() else None
        else:
            g_wrapper, d_wrapper = optim_wrapper, None
        if self.discriminator is not None and d_wrapper is None:
            raise KeyError('This model has a discriminator: optim_wrapper must be an '
                           'OptimWrapperDict with "lifter" and "discriminator" entries '
                           '(constructor="Unsup3DOptimWrapperConstructor")')
        with g_wrapper.optim_context(self.lifter):
            g_losses, fake, real = self.generator_losses(inputs)
        g_loss, log_vars = self.parse_losses(g_losses)
        g_wrapper.update_params(g_loss)
        if self.discriminator is not None and fake is not None:
            with d_wrapper.optim_context(self.discriminator):
                d_losses = self.discriminator_losses(real.detach(), fake)
            d_loss, d_log = self.parse_losses(d_losses)
            d_wrapper.update_params(d_loss)
            log_vars.pop('loss')
            log_vars.update({k: v for k, v in d_log.items() if k != 'loss'})
            log_vars['loss'] = g_loss.detach() + d_loss.detach()
        pairs = getattr(self, '_temporal_pairs', None)
        if self.temporal_discriminator is not None and pairs is not None and len(pairs[0]):
            t_wrapper = optim_wrapper['temporal_discriminator'] if isinstance(
                optim_wrapper, OptimWrapperDict) and 'temporal_discriminator' in \
                optim_wrapper.keys() else None
            if t_wrapper is None:
                raise KeyError('This model has a temporal_discriminator: optim_wrapper needs a '
                               '"temporal_discriminator" entry')
            with t_wrapper.optim_context(self.temporal_discriminator):
                t_losses = self.discriminator_losses(
                    pairs[0], pairs[1], self.temporal_discriminator, prefix='loss_tdisc')
            t_loss, t_log = self.parse_losses(t_losses)
            t_wrapper.update_params(t_loss)
            loss = log_vars.pop('loss')
            log_vars.update({k: v for k, v in t_log.items() if k != 'loss'})
            log_vars['loss'] = loss + t_loss.detach()
        self._temporal_pairs = None
        return log_vars

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_3d(self, keypoints_2d: Tensor, keypoint_scores: Optional[Tensor] = None) -> Tensor:
        """Lift pixel (or any image-plane) 2D poses.

        Args:
            keypoints_2d: ``(B, J, 2)`` 2D poses.
            keypoint_scores: ``(B, J)`` confidences, used by confidence-aware models
                (``use_scores``; ``None`` = all 1) and ignored otherwise.

        Returns:
            ``(B, J, 3)`` root-relative camera-frame 3D (x right, y down, z forward), in
            metres scaled by ``test_cfg.output_head_root`` or in model units.
        """
        self._check_keypoints(keypoints_2d)
        if keypoint_scores is not None and keypoint_scores.shape != keypoints_2d.shape[:-1]:
            raise ValueError(f'keypoint_scores must have shape {tuple(keypoints_2d.shape[:-1])}, '
                             f'got {tuple(keypoint_scores.shape)}')
        pose = root_center(self.lift(self.normalize(keypoints_2d), keypoint_scores),
                           self.root_idx)
        head_root = self.test_cfg.get('output_head_root')
        if head_root:
            dist = pose[:, self.head_idx].norm(dim=-1).clamp_min(1e-8)
            pose = pose * (head_root / dist)[:, None, None]
        return pose

    def forward(self,
                inputs: Dict[str, Tensor],
                data_samples: Optional[List[PoseDataSample]] = None,
                mode: str = 'tensor'):
        """MMEngine entry point: ``tensor`` (3D poses), ``predict`` or ``loss``."""
        if mode == 'tensor':
            return self.predict_3d(inputs['keypoints_2d'], inputs.get('keypoint_scores'))
        if mode == 'predict':
            pose = self.predict_3d(inputs['keypoints_2d'],
                                   inputs.get('keypoint_scores')).cpu().numpy()
            if data_samples is None:
                data_samples = [PoseDataSample() for _ in range(pose.shape[0])]
            for sample, kpts in zip(data_samples, pose):
                pred = InstanceData()
                pred.keypoints = kpts[None].astype(np.float32)  # (1, J, 3), as MMPose's lifters
                pred.keypoint_scores = np.ones((1, kpts.shape[0]), dtype=np.float32)
                sample.pred_instances = pred
            return data_samples
        if mode == 'loss':
            losses, _, _ = self.generator_losses(inputs)
            return losses
        raise ValueError(f'Invalid mode "{mode}"; expected tensor, predict or loss')
