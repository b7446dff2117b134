"""How much does MMEngine's Runner cost per training step, next to a bare PyTorch loop?

Measures, in one process and on the same data, the samples/s of two ways to run the training
step of a config's ``Unsup3DLifter`` (default: the recommended model's config, every component
it trains with: chirality prior, 2D and temporal discriminators, least-squares GAN, R1, flips,
Adam betas (0.5, 0.9)):

- **runner**: an MMEngine ``Runner`` built from the config (its dataset, collate, data
  preprocessor, optimizer wrappers and default hooks) with an ``IterBasedTrainLoop`` of
  ``--warmup + --iters`` iterations, batch ``--batch-size``, ``num_workers=0``, MMEngine's
  ``InfiniteSampler``, no validation, no checkpoints, logging only after the run;
- **bare**: the same step written in this file with plain PyTorch around the *same registered
  components*: every part of the model (lifter, discriminators, elevation predictor, adapter,
  camera sampler, cycle losses, GAN losses, discriminator regularisers, flip, keypoint noise,
  supervised loss) is built with MMPose's registries from the config, so a new loss, sampler or
  GAN objective is measured without a change here; raw ``torch.optim`` optimizers (grouped as
  the config's optimizer constructor groups the parameters); ``backward`` / ``step`` /
  ``zero_grad`` by hand; batches indexed from the whole training set held on the device.

The two are interleaved iteration by iteration: a hook of the lowest priority runs bare
iteration ``i`` right after Runner iteration ``i``, so load from other processes on a shared
machine hits both alike. Runner iteration ``i`` is timed whole, from the end of bare iteration
``i - 1`` to the end of its own hooks (data loading, every hook, ``Unsup3DLifter.train_step``),
and its data path (``DataLoader`` + ``data_preprocessor``) on its own. ``--repeats`` runs this
with fresh models. The ratio runner/bare is that of the median iteration times (totals and
process CPU time are printed beside it); exits with status 1 if it is below ``--min-ratio`` or
the data path takes more than ``--max-data-fraction`` of the Runner's step. Also printed: the
FLOPs of the step's matrix products against this device's ``torch.mm`` rate, and the time of a
Human3.6M-sized epoch (1,559,752 poses) extrapolated from each loop's samples/s.

Before timing, narrow copies of both are run from the same weights and seed for a few steps:
every logged loss term of the bare step must equal ``Unsup3DLifter.train_step``'s (relative
``--check-rtol``; the largest difference is printed), so the bare step cannot drift from the
model unnoticed (``--skip-check`` skips it). A model argument the bare step does not know is
refused by name.

``--arch paper`` (default) measures the paper's networks at any config: lifter 1024 wide x 4
residual blocks, every discriminator 1024 x 3 blocks (``configs/_base_/models/`` and the
Human3.6M temporal config); ``--arch config`` keeps the config's; ``--width`` sets every
network's width (quick runs).

    python benchmarks/train_step_throughput.py [--config CONFIG] [--device cuda [--amp-bf16]]
"""
import argparse
import copy
import gc
import inspect
import math
import os
import os.path as osp
import signal
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
for _path in (REPO, osp.dirname(osp.abspath(__file__))):
    if _path not in sys.path:
        sys.path.insert(0, _path)

DEFAULT_CONFIG = osp.join(
    REPO, 'configs', 'unsup3d',
    'unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-200e_pybullet-mocap.py')
H36M_TRAIN_POSES = 1_559_752  # MMPose's fps50 h36m_train.npz
# The paper's networks (configs/_base_/models/unsup3d_reslifter_2ddisc.py; the temporal
# discriminator as in unsup3d_reslifter-2ddisc-tdisc_8xb64-200e_h36m.py).
PAPER_ARCH = dict(lifter=dict(width=1024, num_blocks=4),
                  discriminator=dict(width=1024, num_blocks=3),
                  temporal_discriminator=dict(width=1024, num_blocks=3))
NETWORKS = ('lifter', 'discriminator', 'temporal_discriminator', 'elevation_net', 'adapter')
# Unsup3DLifter's arguments, by how the bare step builds them; any other one is refused.
MODEL_PARTS = {
    'MODELS': ('lifter', 'discriminator', 'temporal_discriminator', 'elevation_net', 'adapter',
               'gan_loss', 'temporal_gan_loss', 'adapter_gan_loss', 'adapter_reg_loss',
               'sup_loss'),
    'MODELS_LIST': ('cycle_losses', 'disc_auxiliary_losses'),
    'TASK_UTILS': ('camera_sampler', 'flip', 'keypoint_noise'),
    'VALUES': ('num_keypoints', 'root_idx', 'head_idx', 'depth_offset', 'min_depth',
               'scale_mode', 'adapter_score_thr'),
    'IGNORED': ('test_cfg', 'data_preprocessor', 'init_cfg'),  # not used by a training step
}


def clock() -> Tuple[float, float]:
    """``(wall, process CPU)`` seconds now.

    Samples/s are measured in wall time; the process's CPU time beside it shows how much of a
    span other processes on a shared machine took (on a CPU run, CPU/wall well below the thread
    count means the loop waited for a core).
    """
    return time.perf_counter(), time.process_time()


def elapsed(start: Tuple[float, float], stop: Tuple[float, float]) -> Tuple[float, float]:
    """``(wall, CPU)`` seconds between two :func:`clock` readings."""
    return stop[0] - start[0], stop[1] - start[1]


def parse_args() -> argparse.Namespace:
    from _common import add_device_args
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='an Unsup3DLifter training config (default: the recommended one)')
    parser.add_argument('--arch', choices=('paper', 'config'), default='paper')
    parser.add_argument('--width', type=int, default=None, help='width of every network')
    parser.add_argument('--iters', type=int, default=None,
                        help='timed iterations per run (default: 200 on CUDA, 10 on CPU)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed iterations first (>= 1: the first one allocates the '
                        'optimizer states)')
    parser.add_argument('--batch-size', type=int, default=1024)
    parser.add_argument('--repeats', type=int, default=1,
                        help='interleaved runs, each with fresh models')
    # The Runner does the bare loop's work plus its data path and hooks: its expected ratio is
    # 1 - (those) / step, just below 1 when a step takes seconds; 2 % is the noise of medians of
    # a few iterations on a shared 2-core machine.
    parser.add_argument('--min-ratio', type=float, default=0.98,
                        help='exit status 1 if runner/bare samples/s is below it')
    parser.add_argument('--max-data-fraction', type=float, default=0.05,
                        help='exit status 1 if the Runner\'s data path (DataLoader + '
                        'data_preprocessor) takes more of its step')
    parser.add_argument('--skip-check', action='store_true',
                        help='do not check first that the bare step gives the model\'s losses')
    parser.add_argument('--check-rtol', type=float, default=1e-5)
    add_device_args(parser)
    args = parser.parse_args()
    for name in ('iters', 'warmup', 'repeats', 'width'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if args.batch_size < 2:  # BatchNorm in training mode needs two samples
        parser.error(f'--batch-size must be >= 2, got {args.batch_size}')
    args.parser = parser
    return args


def sized_model_cfg(model_cfg: Dict[str, Any], arch: str,
                    width: Optional[int]) -> Dict[str, Any]:
    """``model_cfg`` with the networks of ``--arch`` / ``--width`` (a deep copy)."""
    cfg = copy.deepcopy(model_cfg)
    for name in NETWORKS:
        if not cfg.get(name):
            continue
        if arch == 'paper' and name in PAPER_ARCH:
            cfg[name].update(PAPER_ARCH[name])
        if width is not None and 'width' in inspect.signature(
                _registry('MODELS').get(cfg[name]['type'])).parameters:
            cfg[name]['width'] = width
    return cfg


def _registry(name: str):
    from mmpose import registry
    return getattr(registry, name)


# ---------------------------------------------------------------------------- bare PyTorch
def model_arguments(model_cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Every ``Unsup3DLifter`` argument: the config's, else the constructor's default.

    Raises:
        ValueError: the model is no ``Unsup3DLifter``, or has an argument the bare step does not
            know (it would not be measured).
    """
    from mmunsup3d.models import Unsup3DLifter
    cls = _registry('MODELS').get(model_cfg['type'])
    if cls is None or not issubclass(cls, Unsup3DLifter):
        raise ValueError(f'model type {model_cfg["type"]!r} is not an Unsup3DLifter: this '
                         'benchmark measures its training step')
    params = inspect.signature(Unsup3DLifter.__init__).parameters
    args = {k: p.default for k, p in params.items()
            if k != 'self' and p.kind is p.POSITIONAL_OR_KEYWORD}
    args.update({k: v for k, v in model_cfg.items() if k != 'type'})
    known = {name for names in MODEL_PARTS.values() for name in names}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ValueError(f'The bare step of this benchmark does not know the model argument(s) '
                         f'{unknown}; add them to MODEL_PARTS and BareStep')
    return args


def build_parts(model_cfg: Dict[str, Any]):
    """The model's parts, built from the config with the registries, as an ``nn.Module``
    with the model's attribute names (so state dicts and optimizer groups match)."""
    from torch import nn
    args = model_arguments(model_cfg)
    models, task_utils = _registry('MODELS'), _registry('TASK_UTILS')
    parts = nn.Module()
    for name in MODEL_PARTS['MODELS']:
        setattr(parts, name, models.build(copy.deepcopy(args[name])) if args[name] else None)
    for name in MODEL_PARTS['MODELS_LIST']:
        setattr(parts, name, nn.ModuleList(models.build(copy.deepcopy(c)) for c in args[name]))
    for name in MODEL_PARTS['TASK_UTILS']:
        setattr(parts, name,
                task_utils.build(copy.deepcopy(args[name])) if args[name] else None)
    for name in MODEL_PARTS['VALUES']:
        setattr(parts, name, args[name])
    return parts


def bare_optimizers(parts, optim_cfg: Dict[str, Any]) -> Dict[str, Any]:
    """``{name: torch optimizer}``: the optimizers the config's constructor would wrap."""
    from mmengine.optim import OptimWrapperDict, build_optim_wrapper
    wrappers = build_optim_wrapper(parts, copy.deepcopy(optim_cfg))
    if not isinstance(wrappers, OptimWrapperDict):
        wrappers = {'lifter': wrappers}
    return {name: wrapper.optimizer for name, wrapper in wrappers.items()}


class BareStep:
    """One training step of ``Unsup3DLifter`` in plain PyTorch, on its registered parts.

    Mirrors the model's order of computation and of random draws (flips, noise, dropout,
    cameras), so that from the same weights and seed it gives the same losses.

    Args:
        parts: see :func:`build_parts`.
        optimizers: see :func:`bare_optimizers`.
        amp: a factory of autocast contexts (see ``_common.autocast``).
    """

    def __init__(self, parts, optimizers: Dict[str, Any], amp: Callable) -> None:
        self.p, self.optimizers, self.amp = parts, optimizers, amp
        self.use_scores = getattr(parts.lifter, 'in_channels', 2) == 3

    # ---- geometry (mmunsup3d.structures.geometry, as BaseDepthLifter uses it)
    def _normalize(self, keypoints):
        from mmunsup3d.structures.geometry import normalize_2d
        p = self.p
        return normalize_2d(keypoints, p.root_idx, p.head_idx, p.depth_offset, mode=p.scale_mode)

    def lift(self, x, scores=None):
        import torch
        from mmunsup3d.structures.geometry import lift_to_3d
        inp = x
        if self.use_scores:
            scores = x.new_ones(x.shape[:-1]) if scores is None else scores.to(x.dtype)
            inp = torch.cat([x, scores.unsqueeze(-1)], -1)
        return lift_to_3d(x, self.p.lifter(inp), self.p.depth_offset, self.p.min_depth)

    def real_poses(self, keypoints, scores=None, flip_mask=None):
        """Pixels -> normalised, flipped and corrupted 2D: ``(x, scores, flip mask)``."""
        import torch
        p = self.p
        x = self._normalize(keypoints)[0]
        mask = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        if p.flip is not None:
            x, mask = p.flip(x, flip_mask)
        if scores is not None and p.flip is not None:
            scores = p.flip.flip_scores(scores.to(x.dtype), mask)
        scores = x.new_ones(x.shape[:-1]) if scores is None else scores.to(x.dtype)
        if p.keypoint_noise is not None:
            x, scores = p.keypoint_noise(x, scores)
            x = self._normalize(x)[0]
        return x, scores, mask

    def cameras(self, x):
        """``(rotations, elevation prediction or None)``."""
        net = self.p.elevation_net
        if net is None:
            return self.p.camera_sampler(x), None
        pred = net(x)
        return self.p.camera_sampler(x, pred.detach(), (net.low, net.high)), pred

    def cycle(self, x, scores):
        """lift -> random camera -> project -> lift -> rotate back -> project."""
        from mmunsup3d.structures.geometry import project, root_center, rotate
        p = self.p
        x3d = self.lift(x, scores)
        root = x3d[:, p.root_idx:p.root_idx + 1]
        pose = x3d - root
        rot, elevation = self.cameras(x)
        pose_rot = rotate(pose, rot)
        fake, scale = self._normalize(project(pose_rot + root, p.min_depth))
        pose2 = root_center(self.lift(fake, scores), p.root_idx) / scale[:, None, None]
        reproj = project(rotate(pose2, rot.transpose(-1, -2)) + root, p.min_depth)
        out = dict(input_2d=x, pose_3d=pose, rot=rot, pose_3d_rotated=pose_rot, fake_2d=fake,
                   pose_3d_second=pose2, reprojection=reproj)
        if elevation is not None:
            out['elevation_pred'] = elevation
        return out

    @staticmethod
    def frozen_logits(disc, poses):
        """Discriminator logits with its weights frozen (gradients reach ``poses`` only)."""
        req = [q.requires_grad for q in disc.parameters()]
        disc.requires_grad_(False)
        try:
            return disc(poses)
        finally:
            for q, r in zip(disc.parameters(), req):
                q.requires_grad_(r)

    def adapted_extra(self, inputs: dict, losses: dict):
        """The adapter's poses (its losses into ``losses``), or ``None``."""
        from mmunsup3d.structures.geometry import normalize_2d_masked
        p = self.p
        if p.adapter is None or 'extra_keypoints_2d' not in inputs:
            return None
        kpts, scores = inputs['extra_keypoints_2d'], inputs.get('extra_keypoint_scores')
        scores = kpts.new_ones(kpts.shape[:-1]) if scores is None else scores
        valid = scores >= p.adapter_score_thr
        src, _ = normalize_2d_masked(kpts, valid, c=p.depth_offset)
        adapted, residual = p.adapter(src, scores * valid, return_residual=True)
        adapted = self._normalize(adapted)[0]
        if p.adapter_gan_loss is not None:
            losses[p.adapter_gan_loss.loss_name] = p.adapter_gan_loss(
                self.frozen_logits(p.discriminator, adapted))
        if p.adapter_reg_loss is not None:
            losses[p.adapter_reg_loss.loss_name] = p.adapter_reg_loss(residual * p.depth_offset)
        return adapted

    def temporal_pairs(self, inputs: dict, out: dict, x, flip):
        """Real and fake pairs of consecutive frames ``(P, 2, J, 2)``."""
        import torch
        from mmunsup3d.structures.geometry import project, rotate
        p, batch = self.p, x.shape[0]
        x_next, scores_next, _ = self.real_poses(inputs['keypoints_2d_next'],
                                                 inputs.get('keypoint_scores_next'), flip)
        x3d_next = self.lift(x_next, scores_next)
        root_next = x3d_next[:, p.root_idx:p.root_idx + 1]
        fake_next, _ = self._normalize(project(
            rotate(x3d_next - root_next, out['rot'][:batch]) + root_next, p.min_depth))
        has_next = inputs['has_next'].bool()
        fake = torch.stack([out['fake_2d'][:batch], fake_next], 1)[has_next]
        return torch.stack([x, x_next], 1)[has_next], fake

    def supervised(self, inputs: dict, out: Optional[dict], batch: int):
        """``sup_loss`` on the clean lift of the rows with 3D."""
        import torch
        from mmunsup3d.structures.geometry import root_center
        p = self.p
        has_3d = inputs.get('has_3d')
        has_3d = torch.ones(batch, dtype=torch.bool, device=inputs['keypoints_2d'].device) \
            if has_3d is None else has_3d.bool()
        target = root_center(inputs['keypoints_3d'], p.root_idx)
        if out is not None and (p.flip is None or p.flip.flip_prob <= 0) and \
                p.keypoint_noise is None:
            pose = out['pose_3d'][:batch]
        else:
            pose = root_center(self.lift(self._normalize(inputs['keypoints_2d'])[0],
                                         inputs.get('keypoint_scores')), p.root_idx)
        return p.sup_loss(pose, target, has_3d)

    def cycle_terms(self, x, scores, adapted, losses: dict) -> Optional[dict]:
        """The cycle (with the adapted poses joined, detached) and its losses into ``losses``."""
        import torch
        p = self.p
        if not (len(p.cycle_losses) or p.discriminator is not None or
                p.temporal_discriminator is not None):
            return None
        if adapted is not None:
            extra = adapted.detach() if p.flip is None else p.flip(adapted.detach())[0]
            x = torch.cat([x, extra], 0)
            scores = torch.cat([scores, scores.new_ones(extra.shape[:-1])], 0)
        out = self.cycle(x, scores)
        losses.update((loss.loss_name, loss(out)) for loss in p.cycle_losses)
        return out

    def generator_losses(self, inputs: dict) -> Tuple[Dict[str, Any], Dict[str, tuple]]:
        """The generator's losses and the (real, fake) batches of each discriminator."""
        import torch
        p = self.p
        x, scores, flip = self.real_poses(inputs['keypoints_2d'], inputs.get('keypoint_scores'))
        losses: Dict[str, Any] = {}
        adapted = self.adapted_extra(inputs, losses)
        out, disc = self.cycle_terms(x, scores, adapted, losses), {}
        if p.discriminator is not None and p.gan_loss is not None:
            losses[p.gan_loss.loss_name] = p.gan_loss(
                self.frozen_logits(p.discriminator, out['fake_2d']))
            fakes = [out['fake_2d'].detach()] + ([adapted.detach()] if adapted is not None
                                                 else [])
            disc['discriminator'] = (x.detach(), torch.cat(fakes, 0))
        if p.temporal_discriminator is not None and p.temporal_gan_loss is not None:
            real_pairs, fake_pairs = self.temporal_pairs(inputs, out, x, flip)
            losses[p.temporal_gan_loss.loss_name] = p.temporal_gan_loss(
                self.frozen_logits(p.temporal_discriminator, fake_pairs))
            if len(real_pairs):
                disc['temporal_discriminator'] = (real_pairs.detach(), fake_pairs.detach())
        if p.sup_loss is not None and 'keypoints_3d' in inputs:
            losses[p.sup_loss.loss_name] = self.supervised(inputs, out, x.shape[0])
        if out is not None and 'elevation_pred' in out:  # logged, not a loss
            losses['elevation_deg'] = out['elevation_pred'].detach().mean() * (180.0 / math.pi)
        return losses, disc

    def discriminator_losses(self, name: str, real, fake) -> Dict[str, Any]:
        """Discriminator ``name``'s GAN loss on real + fake, plus the regularisers."""
        import torch
        p = self.p
        gan = p.gan_loss if name == 'discriminator' else p.temporal_gan_loss
        prefix = {'discriminator': 'loss_disc', 'temporal_discriminator': 'loss_tdisc'}[name]
        if any(getattr(aux, 'requires_real_grad', False) for aux in p.disc_auxiliary_losses):
            real = real.detach().requires_grad_(True)
        logits = getattr(p, name)(torch.cat([real, fake], 0))
        real_logits, fake_logits = logits.split([real.shape[0], fake.shape[0]])
        losses = {prefix: gan.discriminator_loss(real_logits, fake_logits)}
        for aux in p.disc_auxiliary_losses:
            losses[f'{prefix}_{aux.loss_name}'] = aux(real, real_logits)
        return losses

    def update(self, name: str, losses: Dict[str, Any]) -> Dict[str, Any]:
        """Sum the terms named ``loss*`` (as MMEngine's ``parse_losses``), step ``name``'s
        optimizer; returns the detached terms."""
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        loss.backward()
        self.optimizers[name].step()
        self.optimizers[name].zero_grad()
        return {k: v.detach() for k, v in losses.items()}

    def __call__(self, inputs: dict) -> Dict[str, Any]:
        """Generator update, then each discriminator's; returns every logged term."""
        with self.amp():
            losses, disc_batches = self.generator_losses(inputs)
        log = self.update('lifter', losses)
        for name, (real, fake) in disc_batches.items():
            with self.amp():
                d_losses = self.discriminator_losses(name, real, fake)
            log.update(self.update(name, d_losses))
        return log


def training_inputs(dataset, device) -> Dict[str, Any]:
    """The whole training set as one batch of the dataset's own ``__getitems__``, on ``device``
    (every field the model reads: next frames, scores, 3D, extra 2D...)."""
    import numpy as np
    batch = dataset.__getitems__(np.arange(len(dataset)))
    return {k: v.to(device) for k, v in batch['inputs'].items()}


class BareLoop:
    """The bare loop: fresh parts and optimizers, shuffled epochs of full batches indexed from
    the training set on the device; ``loop(i)`` runs iteration ``i`` (the first one also counts
    the FLOPs of its matrix products) and returns the seconds spent indexing its batch."""

    def __init__(self, model_cfg, optim_cfg, inputs: Dict[str, Any], batch: int,
                 amp: Callable) -> None:
        self.parts = build_parts(model_cfg).to(inputs['keypoints_2d'].device).train()
        self.step = BareStep(self.parts, bare_optimizers(self.parts, optim_cfg), amp)
        self.inputs, self.batch = inputs, batch
        self.per_epoch = len(inputs['keypoints_2d']) // batch  # full batches, as the Runner's
        self.order, self.pos, self.flops = None, self.per_epoch, 0
        self.params = sum(q.numel() for q in self.parts.parameters())

    def __call__(self, i: int) -> float:
        import torch
        tic = time.perf_counter()
        if self.pos == self.per_epoch:  # a new shuffled epoch
            num = len(self.inputs['keypoints_2d'])
            self.order, self.pos = torch.randperm(num, device=self.inputs['keypoints_2d'].device), 0
        idx = self.order[self.pos * self.batch:(self.pos + 1) * self.batch]
        data = {k: v[idx] for k, v in self.inputs.items()}
        data_s = time.perf_counter() - tic
        self.pos += 1
        if i == 0:  # a warm-up iteration
            self.flops = count_flops(self.step, data)
        else:
            self.step(data)
        return data_s


def count_flops(step: Callable[[dict], Any], data: dict) -> int:
    """FLOPs of one step's matrix products (``mm``, ``addmm``, ``bmm``), forward and backward.

    A dispatch mode of its own: ``torch.utils.flop_counter.FlopCounterMode`` tracks modules
    with hooks that ``torch.autograd.grad`` (the R1 penalty) refuses.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    aten = torch.ops.aten

    class MatmulFlops(TorchDispatchMode):

        def __init__(self) -> None:
            super().__init__()
            self.flops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            packet = func._overloadpacket
            if packet in (aten.mm, aten.addmm, aten.bmm, aten.baddbmm):
                a = args[1] if packet in (aten.addmm, aten.baddbmm) else args[0]
                self.flops += 2 * a.numel() * out.shape[-1]  # 2 m k n (x batch)
            return out

    with MatmulFlops() as counter:
        step(data)
    return counter.flops


def gemm_rate(batch: int, device, dtype, sync: Callable[[], None], width: int = 1024,
              calls: int = 10) -> float:
    """FLOP/s of ``torch.mm`` at ``(batch x width) @ (width x width)``, the networks' main
    product: the best of ``calls`` calls after an untimed one (the best, because other
    processes only ever slow a call down)."""
    import torch
    a = torch.randn(batch, width, device=device, dtype=dtype)
    w = torch.randn(width, width, device=device, dtype=dtype)
    best = float('inf')
    for i in range(calls + 1):
        sync()
        tic = time.perf_counter()
        torch.mm(a, w)
        sync()
        if i:
            best = min(best, time.perf_counter() - tic)
    return 2.0 * batch * width * width / best


def compare_logs(step: int, model_log: Dict[str, Any], bare_log: Dict[str, Any],
                 rtol: float) -> float:
    """Largest relative difference of the terms both log; raises when they differ."""
    model_terms = {k: float(v.detach()) for k, v in model_log.items() if k != 'loss'}
    bare_terms = {k: float(v.detach()) for k, v in bare_log.items()}
    if set(model_terms) != set(bare_terms):
        raise RuntimeError(f'The bare step logs {sorted(bare_terms)}, Unsup3DLifter.train_step '
                           f'{sorted(model_terms)} at step {step}: update BareStep')
    worst = 0.0
    for key, ref in model_terms.items():
        diff = abs(bare_terms[key] - ref) / max(abs(ref), 1e-12)
        worst = max(worst, diff)
        if diff > rtol:
            raise RuntimeError(
                f'The bare step is no longer the model\'s: {key} at step {step} is '
                f'{bare_terms[key]:.8g}, Unsup3DLifter.train_step gives {ref:.8g} (relative '
                f'difference {diff:.2e} > {rtol:g}); update BareStep (or pass --skip-check)')
    return worst


def check_same_step(cfg, model_cfg: Dict[str, Any], inputs: Dict[str, Any], device,
                    rtol: float = 1e-5, steps: int = 3, width: int = 32,
                    batch: int = 64) -> float:
    """Check that :class:`BareStep` still is ``Unsup3DLifter.train_step``, on narrow networks.

    Both start from the same weights and seed and draw their random numbers in the same
    order, so every logged term must agree at every step (and with them the optimizer
    updates). Narrow networks keep this to a fraction of a second.

    Returns:
        The largest relative difference seen.

    Raises:
        RuntimeError: naming the term, the step and both values when they differ.
    """
    import contextlib

    import torch
    from mmengine.optim import build_optim_wrapper
    small = sized_model_cfg(model_cfg, 'config', width)
    model = _registry('MODELS').build(copy.deepcopy(small)).to(device).train()
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    parts = build_parts(small).to(device).train()
    missing = parts.load_state_dict(model.state_dict(), strict=False).missing_keys
    if missing:
        raise RuntimeError(f'The bare parts have weights the model lacks: {missing}')
    step = BareStep(parts, bare_optimizers(parts, cfg.optim_wrapper.to_dict()),
                    contextlib.nullcontext)
    worst = 0.0
    for i in range(steps):
        data = {k: v[i * batch:(i + 1) * batch] for k, v in inputs.items()}
        torch.manual_seed(i)
        model_log = model.train_step({'inputs': {k: v.clone() for k, v in data.items()}},
                                     optim_wrapper)
        torch.manual_seed(i)
        bare_log = step({k: v.clone() for k, v in data.items()})
        worst = max(worst, compare_logs(i, model_log, bare_log, rtol))
    return worst


# ---------------------------------------------------------------------------- MMEngine Runner
def make_interleaver(bare: BareLoop, warmup: int, sync: Callable[[], None]):
    """A hook that runs bare iteration ``i`` right after Runner iteration ``i``, timing both.

    Interleaving iteration by iteration makes load from other processes on a shared machine
    hit both loops alike. Register it with the lowest priority: Runner iteration ``i`` is timed
    from the end of bare iteration ``i - 1`` (the loop then fetches the batch, runs
    ``before_train_iter``, ``train_step`` and the other hooks' ``after_train_iter``) to this
    hook's ``after_train_iter``; its data is the span up to ``before_train_iter``.
    """
    from mmengine.hooks import Hook

    class Interleaver(Hook):

        def __init__(self) -> None:
            self.resume: Optional[Tuple[float, float]] = None
            self.spans: Dict[str, List[Tuple[float, float]]] = {'runner': [], 'bare': []}
            self.data_s: Dict[str, List[float]] = {'runner': [], 'bare': []}
            self.samples = 0

        def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
            if batch_idx >= warmup:
                self.data_s['runner'].append(time.perf_counter() - self.resume[0])

        def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                             outputs=None) -> None:
            sync()
            runner_end = clock()
            bare_data_s = bare(batch_idx)
            sync()
            bare_end = clock()
            if batch_idx >= warmup:
                self.samples += len(data_batch['inputs']['keypoints_2d'])
                self.spans['runner'].append(elapsed(self.resume, runner_end))
                self.spans['bare'].append(elapsed(runner_end, bare_end))
                self.data_s['bare'].append(bare_data_s)
            self.resume = bare_end

    return Interleaver()


def time_preprocessor(model) -> List[float]:
    """Seconds of every ``model.data_preprocessor`` call from now on (the list fills up)."""
    spans: List[float] = []
    preprocessor = model.data_preprocessor
    forward = preprocessor.forward

    def timed(*args, **kwargs):
        tic = time.perf_counter()
        out = forward(*args, **kwargs)
        spans.append(time.perf_counter() - tic)
        return out

    preprocessor.forward = timed  # nn.Module.__call__ looks forward up on the instance
    return spans


def runner_config(cfg, args, work_dir: str, run: int):
    """The Runner's config: ``warmup + iters`` iterations, nothing else than training."""
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    # Runners built in the same second would otherwise share MMEngine's global instances.
    cfg.experiment_name = f'train_step_throughput_{run}_{uuid.uuid4().hex[:8]}'
    cfg.visualizer.name = cfg.experiment_name
    cfg.log_level = 'WARNING'  # no config/environment dump on stdout
    max_iters = args.warmup + args.iters
    cfg.train_dataloader.update(batch_size=args.batch_size, num_workers=0,
                                persistent_workers=False,
                                # One endless shuffled stream of full batches: the config's
                                # DefaultSampler would restart the loader every few batches.
                                sampler=dict(type='InfiniteSampler', shuffle=True))
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                         val_interval=max_iters + 1)
    for split in ('val', 'test'):
        cfg[f'{split}_cfg'] = cfg[f'{split}_dataloader'] = cfg[f'{split}_evaluator'] = None
    cfg.default_hooks.checkpoint = None  # no checkpoint written inside the timed span
    cfg.default_hooks.logger.interval = max_iters + 1  # no log line inside the timed span
    cfg.log_processor.by_epoch = False
    cfg.launcher = 'none'
    cfg.resume, cfg.load_from = False, None
    if args.amp_bf16:
        wrappers = cfg.optim_wrapper.items() if 'constructor' in cfg.optim_wrapper else \
            [('', cfg.optim_wrapper)]
        for key, entry in wrappers:
            if key != 'constructor':
                # bf16 has float32's range: no loss scaling (nor its per-step inf check, which
                # the bare loop does not have either).
                entry.update(type='AmpOptimWrapper', dtype='bfloat16',
                             loss_scale=dict(enabled=False))
    return cfg


def run_interleaved(cfg, model_cfg, inputs, args, work_dir: str, run: int, sync,
                    amp) -> Dict[str, Dict[str, Any]]:
    """``runner.train()`` with a fresh bare loop interleaved (see :func:`make_interleaver`).

    Returns:
        ``{'runner': ..., 'bare': ...}``, each a dict of ``samples``, ``iter_s`` (seconds of
        each timed iteration), ``wall`` and ``cpu`` (their sums), ``data_s`` (per iteration:
        DataLoader and the hooks before the step, or indexing the bare batch); the Runner's
        also ``prep_s`` (``data_preprocessor``), the bare loop's ``flops`` and ``params``.
    """
    from mmengine.runner import Runner
    bare = BareLoop(model_cfg, cfg.optim_wrapper.to_dict(), inputs, args.batch_size, amp)
    runner = Runner.from_cfg(runner_config(cfg, args, work_dir, run))
    hook = make_interleaver(bare, args.warmup, sync)
    runner.register_hook(hook, priority='LOWEST')
    prep_s = time_preprocessor(runner.model)
    runner.train()
    if len(hook.spans['runner']) != args.iters:
        raise RuntimeError(f'The Runner ran {runner.iter} of {args.warmup + args.iters} '
                           'iterations: the timing hook saw too few')
    out = {}
    for name, spans in hook.spans.items():
        out[name] = dict(samples=hook.samples, iter_s=[w for w, _ in spans],
                         wall=sum(w for w, _ in spans), cpu=sum(c for _, c in spans),
                         data_s=hook.data_s[name])
    out['runner']['prep_s'] = prep_s[-args.iters:]
    out['bare'].update(flops=bare.flops, params=bare.params)
    return out


# ---------------------------------------------------------------------------- main
def median_rate(run: Dict[str, Any], batch: int) -> float:
    """Samples/s at the run's median iteration time."""
    return batch / statistics.median(run['iter_s'])


def run_repeats(cfg, model_cfg, inputs, args, device, sync, amp, tmp: str) -> Dict[str, list]:
    """``--repeats`` interleaved runs, each with fresh models; prints a line per run."""
    import torch
    runs: Dict[str, list] = {'bare': [], 'runner': []}
    for r in range(args.repeats):
        torch.manual_seed(r)
        out = run_interleaved(cfg, model_cfg, inputs, args, osp.join(tmp, f'runner_{r}'), r,
                              sync, amp)
        for name in runs:
            runs[name].append(out[name])
        gc.collect()
        if device.type == 'cuda':
            torch.cuda.empty_cache()
        bare, runner = out['bare'], out['runner']
        print(f'repeat {r + 1}/{args.repeats}: bare {median_rate(bare, args.batch_size):,.0f} '
              f'samples/s (CPU {bare["cpu"] / bare["wall"]:.2f} s/s), runner '
              f'{median_rate(runner, args.batch_size):,.0f} samples/s (CPU '
              f'{runner["cpu"] / runner["wall"]:.2f} s/s); {bare["params"] / 1e6:.1f} M '
              'parameters', flush=True)
    return runs


def pooled(runs: List[Dict[str, Any]], key: str) -> List[float]:
    return [x for run in runs for x in run[key]]


def report(runs: Dict[str, list], args) -> bool:
    """Print the figures and thresholds; True when both thresholds are met."""
    batch = args.batch_size
    rate = {k: batch / statistics.median(pooled(v, 'iter_s')) for k, v in runs.items()}
    total = {k: [sum(r[f] for r in v) for f in ('samples', 'wall', 'cpu')]
             for k, v in runs.items()}
    cpu_ratio = (total['runner'][0] / total['runner'][2]) / (total['bare'][0] / total['bare'][2])
    print(f'bare PyTorch: {rate["bare"]:,.0f} samples/s; Runner: {rate["runner"]:,.0f} '
          f'samples/s (median of {len(pooled(runs["bare"], "iter_s"))} iterations each); '
          f'totals: bare {total["bare"][0] / total["bare"][1]:,.0f}, Runner '
          f'{total["runner"][0] / total["runner"][1]:,.0f} samples/s; ratio by process CPU '
          f'time {cpu_ratio:.3f}')
    flops = runs['bare'][0]['flops']
    print(f'bare step: {flops / 1e9:.1f} GFLOP of matrix products per step (forward and '
          f'backward) = {flops * rate["bare"] / batch / 1e9:.1f} GFLOP/s, '
          f'{flops * rate["bare"] / batch / args.gemm_rate:.2f} of this device\'s GEMM rate '
          f'({args.gemm_rate / 1e9:.1f} GFLOP/s: torch.mm {batch} x 1024 x 1024)')
    spread = {k: statistics.quantiles(pooled(v, 'iter_s'), n=4) if len(pooled(v, 'iter_s')) > 1
              else pooled(v, 'iter_s') * 3 for k, v in runs.items()}
    print('iteration seconds (quartiles, the spread other processes cause): ' + ', '.join(
        f'{k} {q[0]:.3g} / {q[1]:.3g} / {q[2]:.3g}' for k, q in spread.items()))
    data_ok = report_data_path(runs, args.max_data_fraction)
    for name in ('runner', 'bare'):
        print(f'Human3.6M-sized epoch ({H36M_TRAIN_POSES:,} poses) at the {name} rate: '
              f'{H36M_TRAIN_POSES / rate[name] / 60:.1f} min (extrapolated)')
    ratio = rate['runner'] / rate['bare']
    ok = ratio >= args.min_ratio
    print(f'ratio runner/bare: {ratio:.3f} (need >= {args.min_ratio:g}): '
          f'{"OK" if ok else "FAIL: the Runner costs more than allowed"}')
    return ok and data_ok


def report_data_path(runs: Dict[str, list], max_fraction: float) -> bool:
    """Print the Runner's data path per step (medians); True when within ``max_fraction``."""
    step = statistics.median(pooled(runs['runner'], 'iter_s'))
    data = statistics.median(pooled(runs['runner'], 'data_s'))
    prep = statistics.median(pooled(runs['runner'], 'prep_s'))
    index = statistics.median(pooled(runs['bare'], 'data_s'))
    frac = (data + prep) / step
    ok = frac <= max_fraction
    print(f'data path of the Runner: DataLoader {data * 1e3:.2f} ms + data_preprocessor '
          f'{prep * 1e3:.2f} ms per step of {step * 1e3:.1f} ms = {frac:.1%} (need <= '
          f'{max_fraction:.0%}: {"OK" if ok else "FAIL"}); bare loop: indexing the batch '
          f'{index * 1e3:.2f} ms')
    return ok


def setup(args):
    """Device, sync and autocast; CUDA hidden for ``--device cpu`` (MMEngine's Runner takes
    CUDA whenever it is visible), before anything initialises it."""
    if args.device is not None and args.device.startswith('cpu'):
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    import torch
    from _common import autocast, make_sync, resolve_device
    device = resolve_device(args.parser, args.device, args.amp_bf16)
    if device.type == 'cuda':
        torch.cuda.set_device(device)  # the Runner's model.to('cuda') uses this one
    if args.iters is None:  # a CUDA step takes milliseconds, a CPU one seconds
        args.iters = 200 if device.type == 'cuda' else 10
    return device, make_sync(device), autocast(device, args.amp_bf16)


def describe(cfg, model_cfg, dataset, args) -> str:
    """The measured model and loop, in one line."""
    nets = ', '.join(f'{name} {model_cfg[name]["type"]} {model_cfg[name].get("width")} x '
                     f'{model_cfg[name].get("num_blocks", model_cfg[name].get("num_layers"))}'
                     for name in NETWORKS if model_cfg.get(name))
    losses = [c['type'] for c in model_cfg.get('cycle_losses', [])]
    gans = [model_cfg[k].get('gan_type', 'vanilla') for k in ('gan_loss', 'temporal_gan_loss')
            if model_cfg.get(k)]
    return (f'config {osp.relpath(args.config, REPO)} (--arch {args.arch}'
            f'{"" if args.width is None else f", --width {args.width}"}): {nets}; cycle '
            f'losses {losses}; GAN {gans}; batch {args.batch_size}; {len(dataset)} training '
            f'poses; {args.warmup} warm-up + {args.iters} timed iterations, {args.repeats} '
            'repeat(s)')


def main() -> int:
    args = parse_args()
    # A plain SIGTERM ends Python without unwinding: exit through SystemExit instead, so the
    # temporary work folder of the Runners is removed as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    device, sync, amp = setup(args)
    from mmengine.config import Config
    from _common import describe_machine
    from mmunsup3d.utils import register_all_modules
    register_all_modules()
    print(describe_machine(device, args.amp_bf16))
    cfg = Config.fromfile(args.config)
    cfg.model = sized_model_cfg(cfg.model.to_dict(), args.arch, args.width)
    dataset = _registry('DATASETS').build(copy.deepcopy(cfg.train_dataloader.dataset))
    if args.batch_size > len(dataset):
        args.parser.error(f'--batch-size {args.batch_size} is larger than the training set '
                          f'({len(dataset)} poses)')
    inputs = training_inputs(dataset, device)
    if not args.skip_check:
        worst = check_same_step(cfg, cfg.model.to_dict(), inputs, device, args.check_rtol)
        print(f'check: the bare step gives Unsup3DLifter.train_step\'s losses (3 steps, '
              f'largest relative difference {worst:.1e}, tolerance {args.check_rtol:g})')
    print(describe(cfg, cfg.model.to_dict(), dataset, args))
    import torch
    dtype = torch.bfloat16 if args.amp_bf16 else torch.float32
    rate_before = gemm_rate(args.batch_size, device, dtype, sync)
    with tempfile.TemporaryDirectory(prefix='train_step_throughput_') as tmp:
        runs = run_repeats(cfg, cfg.model.to_dict(), inputs, args, device, sync, amp, tmp)
    # Before and after the runs: a load spike at one of the two moments does not count.
    args.gemm_rate = max(rate_before, gemm_rate(args.batch_size, device, dtype, sync))
    return 0 if report(runs, args) else 1


if __name__ == '__main__':
    sys.exit(main())
