"""Unsupervised 3D lifting with geometric self-supervision (Chen et al., CVPR 2019).

The model composes registered parts (``docs/components.md`` draws the figure): a lifter, a
camera sampler (``TASK_UTILS``), the cycle losses, GAN objectives and discriminator
regularisers (``mmunsup3d.models.losses``), optional discriminators, a 2D domain adapter, an
elevation predictor and 2D augmentations. A part left out of the config is not computed.
"""
import copy
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor, nn

from mmpose.registry import MODELS, TASK_UTILS
from ...structures.geometry import normalize_2d_masked, project, root_center, rotate
from ..losses import bone_asymmetry, scale_aligned_error, torso_elevation
from .base_lifter import BaseDepthLifter

__all__ = ['Unsup3DLifter', 'bone_asymmetry', 'scale_aligned_error', 'torso_elevation']

DISCRIMINATORS = {'discriminator': 'loss_disc', 'temporal_discriminator': 'loss_tdisc'}
_LEGACY = {'loss_weights': 'cycle_losses / gan_loss / sup_loss ... (loss_weight each)',
           'rotation': 'camera_sampler', 'use_scores': "the lifter's in_channels=3",
           'train_cfg': 'flip / keypoint_noise / disc_auxiliary_losses / adapter_score_thr',
           'up_idx': 'ElevationRegressionLoss(up_idx=...)'}


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


def _build(registry, cfg: Optional[dict]):
    return registry.build(copy.deepcopy(cfg)) if cfg else None


def _reject_legacy(legacy: dict) -> None:
    """Name the replacement of each argument of the pre-component API (clear config errors)."""
    if legacy:
        raise TypeError('Unsup3DLifter: ' + '; '.join(
            f'"{k}" was replaced by {_LEGACY.get(k, "nothing (unknown argument)")}'
            for k in legacy) + ' (see docs/components.md)')


def _check_parts(model: nn.Module) -> None:
    """The two couplings between parts that a config can get wrong."""
    if model.adapter is not None and (model.discriminator is None or model.gan_loss is None):
        raise ValueError('The domain adapter is trained against the 2D discriminator: give '
                         'a discriminator and its gan_loss')
    if (model.elevation_net is not None) != getattr(model.camera_sampler, 'needs_elevation',
                                                    False):
        raise ValueError('elevation_net and ElevationRetiltCameraSampler go together (the '
                         'sampler needs the predicted elevations)')


@MODELS.register_module()
class Unsup3DLifter(BaseDepthLifter):
    """Lift 2D poses to 3D without 3D labels: lift, rotate, project, lift again, rotate back.

    ``train_step`` = :meth:`train_generator` (lifter, plus adapter and elevation predictor
    under its optimizer), then :meth:`train_discriminator` for each discriminator, on the
    (real, fake) batches the generator step returns. Optimizer names are the attribute names.

    Args:
        lifter: lifting network, ``(B, J, C)`` -> ``(B, J)`` depth offsets; ``C = 3`` (its
            ``in_channels``) makes the model confidence-aware (scores as a third channel).
        discriminator: 2D pose discriminator (real: dataset 2D, fake: synthetic projections).
        temporal_discriminator: discriminator of consecutive-frame pairs (``num_frames=2``;
            needs the dataset's ``with_next=True``).
        elevation_net: camera-elevation predictor (ElePose), for
            ``ElevationRetiltCameraSampler``.
        adapter: 2D domain adapter for batches carrying ``extra_keypoints_2d``.
        camera_sampler: ``TASK_UTILS`` config of the virtual cameras.
        cycle_losses: losses of the cycle output (``Reprojection/RotationConsistencyLoss``,
            ``BoneSymmetryLoss``, ``ElevationRegressionLoss``), in log order.
        gan_loss: ``GANLoss`` of the 2D discriminator (generator term ``loss_adv``; its
            ``gan_type`` also trains the discriminator).
        temporal_gan_loss: ``GANLoss`` of the temporal discriminator (``loss_temporal``).
        disc_auxiliary_losses: regularisers of every discriminator (``R1GradientPenalty``).
        adapter_gan_loss: ``GANLoss`` training the adapter to fool the 2D discriminator.
        adapter_reg_loss: ``AdapterResidualLoss`` on the adapter's residual.
        sup_loss: ``ScaleAlignedMPJPELoss`` on samples that carry 3D (semi-supervision).
        flip: ``RandomFlip2D`` config, or ``None``.
        keypoint_noise: ``KeypointNoise2D`` config (detector-like corruption), or ``None``.
        adapter_score_thr: extra (adapter) joints scoring below it count as missing.
        num_keypoints, root_idx, head_idx, depth_offset, min_depth, scale_mode, test_cfg,
        data_preprocessor, init_cfg: see :class:`BaseDepthLifter`.
    """

    def __init__(self, lifter: dict, discriminator: Optional[dict] = None,
                 temporal_discriminator: Optional[dict] = None,
                 elevation_net: Optional[dict] = None, adapter: Optional[dict] = None,
                 camera_sampler: Optional[dict] = dict(type='RandomOrbitCameraSampler'),
                 cycle_losses: Sequence[dict] = (dict(type='ReprojectionConsistencyLoss'),
                                                 dict(type='RotationConsistencyLoss')),
                 gan_loss: Optional[dict] = dict(type='GANLoss'),
                 temporal_gan_loss: Optional[dict] = None,
                 disc_auxiliary_losses: Sequence[dict] = (),
                 adapter_gan_loss: Optional[dict] = None,
                 adapter_reg_loss: Optional[dict] = None, sup_loss: Optional[dict] = None,
                 flip: Optional[dict] = None, keypoint_noise: Optional[dict] = None,
                 num_keypoints: int = 17, root_idx: int = 0, head_idx: int = 10,
                 depth_offset: float = 10.0, min_depth: float = 1.0, scale_mode: str = 'head',
                 adapter_score_thr: float = 0.05, test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 **legacy) -> None:
        _reject_legacy(legacy)
        super().__init__(lifter, num_keypoints, root_idx, head_idx, depth_offset, min_depth,
                         scale_mode, test_cfg, data_preprocessor, init_cfg)
        for name in ('discriminator', 'temporal_discriminator', 'elevation_net', 'adapter'):
            setattr(self, name, _build(MODELS, locals()[name]))
        self.camera_sampler = _build(TASK_UTILS, camera_sampler)
        self.cycle_losses = nn.ModuleList(MODELS.build(copy.deepcopy(c)) for c in cycle_losses)
        self.disc_auxiliary_losses = nn.ModuleList(
            MODELS.build(copy.deepcopy(c)) for c in disc_auxiliary_losses)
        self.gan_loss, self.temporal_gan_loss, self.adapter_gan_loss, self.adapter_reg_loss, \
            self.sup_loss = (_build(MODELS, c) for c in (gan_loss, temporal_gan_loss,
                                                         adapter_gan_loss, adapter_reg_loss,
                                                         sup_loss))
        self.flip, self.keypoint_noise = _build(TASK_UTILS, flip), _build(TASK_UTILS,
                                                                          keypoint_noise)
        self.adapter_score_thr = adapter_score_thr
        _check_parts(self)

    def sample_cameras(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """``(B, 3, 3)`` virtual cameras and, with an elevation predictor, its ``(B,)``
        predictions (with gradient; the cameras use them detached)."""
        if self.elevation_net is None:
            return self.camera_sampler(x), None
        pred = self.elevation_net(x)
        net = _unwrap(self.elevation_net)
        return self.camera_sampler(x, pred.detach(), (net.low, net.high)), pred

    def cycle(self, x: Tensor, scores: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """lift -> random camera -> project -> lift -> rotate back -> project.

        Args:
            x: ``(B, J, 2)`` normalised 2D poses; scores: ``(B, J)`` (synthetic views inherit
                them).

        Returns:
            ``input_2d``, ``pose_3d`` (first lift, root-centred), ``rot`` ``(B, 3, 3)``,
            ``pose_3d_rotated``, ``fake_2d`` (normalised synthetic view), ``pose_3d_second``
            (its lift at the first lift's scale), ``reprojection`` (into the input view) and,
            with an elevation predictor, ``elevation_pred``.
        """
        x3d = self.lift(x, scores)
        root = x3d[:, self.root_idx:self.root_idx + 1]  # (B, 1, 3): (0, 0, z_root)
        pose = x3d - root
        rot, elevation = self.sample_cameras(x)
        pose_rot = rotate(pose, rot)
        # Same root depth as the first lift (R = I reproduces x); depths clamped as in the lift.
        fake, scale = self._normalize(project(pose_rot + root, self.min_depth))
        pose2 = root_center(self.lift(fake, scores), self.root_idx) / scale[:, None, None]
        reproj = project(rotate(pose2, rot.transpose(-1, -2)) + root, self.min_depth)
        out = dict(input_2d=x, pose_3d=pose, rot=rot, pose_3d_rotated=pose_rot, fake_2d=fake,
                   pose_3d_second=pose2, reprojection=reproj)
        if elevation is not None:
            out['elevation_pred'] = elevation
        return out

    # ------------------------------------------------------------------ generator
    def real_poses(self, keypoints: Tensor, scores: Optional[Tensor] = None,
                   flip_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Pixels -> normalised, flipped (``flip_mask`` reuses a draw) and corrupted 2D.

        Returns:
            ``(x (B, J, 2), scores (B, J), flip mask (B,))``.
        """
        x = self.normalize(keypoints)
        mask = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        if self.flip is not None:
            x, mask = self.flip(x, flip_mask)
        if scores is not None and self.flip is not None:
            scores = self.flip.flip_scores(scores.to(x.dtype), mask)
        scores = x.new_ones(x.shape[:-1]) if scores is None else scores.to(x.dtype)
        if self.keypoint_noise is not None:
            x, scores = self.keypoint_noise(x, scores)
            x = self.normalize(x)
        return x, scores, mask

    def adapt_extra(self, keypoints: Tensor,
                    scores: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Extra 2D poses (another convention) -> ``(adapted (B, J, 2) normalised, residual
        (B, J, 2) in normalised units)``; missing joints score below ``adapter_score_thr``."""
        scores = keypoints.new_ones(keypoints.shape[:-1]) if scores is None else scores
        valid = scores >= self.adapter_score_thr
        src, _ = normalize_2d_masked(keypoints, valid, c=self.depth_offset)
        adapted, residual = self.adapter(src, scores * valid, return_residual=True)
        return self.normalize(adapted), residual

    def _adapter_terms(self, inputs: dict, losses: dict) -> Optional[Tensor]:
        """Adapter losses (into ``losses``); returns the adapted poses, or ``None``."""
        if self.adapter is None or 'extra_keypoints_2d' not in inputs:
            return None
        adapted, residual = self.adapt_extra(inputs['extra_keypoints_2d'],
                                             inputs.get('extra_keypoint_scores'))
        if self.adapter_gan_loss is not None:
            losses[self.adapter_gan_loss.loss_name] = self.adapter_gan_loss(
                _frozen_logits(self.discriminator, adapted))
        if self.adapter_reg_loss is not None:
            # Normalised poses are ~1/c tall: the penalty is in units of the person's size.
            losses[self.adapter_reg_loss.loss_name] = self.adapter_reg_loss(
                residual * self.depth_offset)
        return adapted

    def _temporal_pairs(self, inputs: dict, out: dict, x: Tensor,
                        flip: Tensor) -> Tuple[Tensor, Tensor]:
        """(real, fake) pairs ``(P, 2, J, 2)``: consecutive frames, flipped and seen alike."""
        if 'keypoints_2d_next' not in inputs:
            raise KeyError('temporal_discriminator needs consecutive frames: build the '
                           'training dataset with with_next=True')
        batch = x.shape[0]
        x_next, scores_next, _ = self.real_poses(inputs['keypoints_2d_next'],
                                                 inputs.get('keypoint_scores_next'), flip)
        x3d_next = self.lift(x_next, scores_next)
        root_next = x3d_next[:, self.root_idx:self.root_idx + 1]
        fake_next, _ = self._normalize(project(
            rotate(x3d_next - root_next, out['rot'][:batch]) + root_next, self.min_depth))
        has_next = inputs['has_next'].bool()
        fake = torch.stack([out['fake_2d'][:batch], fake_next], 1)[has_next]
        return torch.stack([x, x_next], 1)[has_next], fake

    def _supervised_term(self, inputs: dict, out: Optional[dict], batch: int) -> Tensor:
        """``sup_loss`` on the clean lift of the samples with 3D (flip/noise alter only 2D)."""
        has_3d = inputs.get('has_3d')
        has_3d = torch.ones(batch, dtype=torch.bool, device=inputs['keypoints_2d'].device) \
            if has_3d is None else has_3d.bool()
        target = root_center(inputs['keypoints_3d'], self.root_idx)
        if out is not None and (self.flip is None or self.flip.flip_prob <= 0) and \
                self.keypoint_noise is None:
            pose = out['pose_3d'][:batch]
        else:
            pose = root_center(self.lift(self.normalize(inputs['keypoints_2d']),
                                         inputs.get('keypoint_scores')), self.root_idx)
        return self.sup_loss(pose, target, has_3d)

    def generator_losses(self, inputs: dict) -> Tuple[Dict[str, Tensor], Dict[str, tuple]]:
        """Losses of the generator step and the (real, fake) batches of each discriminator."""
        x, scores, flip = self.real_poses(inputs['keypoints_2d'], inputs.get('keypoint_scores'))
        losses: Dict[str, Tensor] = {}
        adapted = self._adapter_terms(inputs, losses)
        use_adv = self.discriminator is not None and self.gan_loss is not None
        use_temporal = self.temporal_discriminator is not None and \
            self.temporal_gan_loss is not None
        out, disc = None, {}
        if len(self.cycle_losses) or use_adv or use_temporal:
            cx, cs = x, scores
            if adapted is not None:  # adapted extra poses join the cycle (detached)
                extra = adapted.detach() if self.flip is None else self.flip(adapted.detach())[0]
                cx, cs = torch.cat([x, extra], 0), torch.cat([scores, scores.new_ones(
                    extra.shape[:-1])], 0)
            out = self.cycle(cx, cs)
            losses.update((loss.loss_name, loss(out)) for loss in self.cycle_losses)
        if use_adv:
            losses[self.gan_loss.loss_name] = self.gan_loss(
                _frozen_logits(self.discriminator, out['fake_2d']))
            fakes = [out['fake_2d'].detach()] + ([adapted.detach()] if adapted is not None else [])
            disc['discriminator'] = (x.detach(), torch.cat(fakes, 0))
        if use_temporal:
            real_pairs, fake_pairs = self._temporal_pairs(inputs, out, x, flip)
            losses[self.temporal_gan_loss.loss_name] = self.temporal_gan_loss(
                _frozen_logits(self.temporal_discriminator, fake_pairs))
            if len(real_pairs):
                disc['temporal_discriminator'] = (real_pairs.detach(), fake_pairs.detach())
        if self.sup_loss is not None and 'keypoints_3d' in inputs:
            losses[self.sup_loss.loss_name] = self._supervised_term(inputs, out, x.shape[0])
        if not losses:
            raise ValueError('No loss is active: configure a loss (and give 3D for sup_loss)')
        if out is not None and 'elevation_pred' in out:  # logged, not a loss (no "loss")
            losses['elevation_deg'] = out['elevation_pred'].detach().mean() * (180.0 / math.pi)
        return losses, disc

    def train_generator(self, inputs: dict,
                        optim_wrapper: OptimWrapper) -> Tuple[Dict[str, Tensor], dict]:
        """Update the lifter (and adapter / elevation predictor under its optimizer).

        Returns:
            ``(log_vars, {discriminator name: (real, fake)})``.
        """
        with optim_wrapper.optim_context(self.lifter):
            losses, disc_batches = self.generator_losses(inputs)
        loss, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(loss)
        return log_vars, disc_batches

    # ------------------------------------------------------------------ discriminators
    def discriminator_losses(self, name: str, real: Tensor, fake: Tensor) -> Dict[str, Tensor]:
        """GAN loss of discriminator ``name`` on one real + fake batch, plus its regularisers."""
        disc = getattr(self, name)
        gan = self.gan_loss if name == 'discriminator' else self.temporal_gan_loss
        prefix = DISCRIMINATORS[name]
        if any(getattr(aux, 'requires_real_grad', False) for aux in self.disc_auxiliary_losses):
            real = real.detach().requires_grad_(True)
        logits = disc(torch.cat([real, fake], 0))
        real_logits, fake_logits = logits.split([real.shape[0], fake.shape[0]])
        losses = {prefix: gan.discriminator_loss(real_logits, fake_logits)}
        for aux in self.disc_auxiliary_losses:
            losses[f'{prefix}_{aux.loss_name}'] = aux(real, real_logits)
        return losses

    def train_discriminator(self, name: str, real: Tensor, fake: Tensor,
                            optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """Update discriminator ``name``; returns its log variables."""
        with optim_wrapper.optim_context(getattr(self, name)):
            losses = self.discriminator_losses(name, real, fake)
        loss, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(loss)
        return log_vars

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> Dict[str, Tensor]:
        """One generator update, then one update of each discriminator (mmagic-style)."""
        data = self.data_preprocessor(data, True)
        inputs = data['inputs']
        self._check_keypoints(inputs['keypoints_2d'])
        wrappers = optim_wrapper if isinstance(optim_wrapper, OptimWrapperDict) else \
            dict(lifter=optim_wrapper)
        for name in DISCRIMINATORS:  # before any update: no half-done step on a bad config
            if getattr(self, name) is not None and name not in wrappers.keys():
                raise KeyError(f'This model has a {name}: optim_wrapper must be an '
                               f'OptimWrapperDict with a "{name}" entry '
                               '(constructor="Unsup3DOptimWrapperConstructor")')
        log_vars, disc_batches = self.train_generator(inputs, wrappers['lifter'])
        for name, (real, fake) in disc_batches.items():
            d_log = self.train_discriminator(name, real, fake, wrappers[name])
            loss = log_vars.pop('loss')
            log_vars.update((k, v) for k, v in d_log.items() if k != 'loss')
            log_vars['loss'] = loss.detach() + d_log['loss'].detach()
        return log_vars

    def loss(self, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """The generator step's losses (``forward(mode='loss')``)."""
        return self.generator_losses(inputs)[0]
