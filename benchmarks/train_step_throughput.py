"""How much does MMEngine's Runner cost per training step, next to a bare PyTorch loop?

Measures, in one process and on the same data, the samples/s of two ways to run the
unsupervised lifter's GAN step (Chen et al., CVPR 2019) with the paper's architecture (the
base model config ``configs/_base_/models/unsup3d_reslifter_2ddisc.py``: residual lifter
1024 wide x 4 blocks, 2D discriminator 1024 x 3 blocks, Adam for each):

- **runner**: an MMEngine ``Runner`` built from the project's runtime, the base model config
  and the embedded mocap data (``configs/_base_/datasets/pybullet_mocap.py``), with an
  ``IterBasedTrainLoop`` of ``--warmup + --iters`` iterations, batch ``--batch-size``,
  ``num_workers=0``, MMEngine's ``InfiniteSampler``, no validation, no checkpoints, logging
  only after the run. A hook of the lowest priority takes a timestamp at ``after_train_iter``
  of the last warm-up iteration and of the last iteration, so the timed span is exactly
  ``--iters`` whole loop iterations: data loading, every hook, ``Unsup3DLifter.train_step``;
- **bare**: the same step written directly with torch ops (normalise, flip, lift, random
  rotation, project, lift, rotate back, 2D/3D consistency, BCE adversarial term against the
  frozen discriminator; then the discriminator's BCE step with the model's R1 penalty), on
  freshly built ``ResidualLifter`` / ``PoseDiscriminator2D`` modules with ``torch.optim.Adam``
  of the config's settings, drawing shuffled batches from the training 2D poses pre-loaded on
  the device. Its settings (camera ranges, loss weights, flip probability...) are read from
  the model's parts; parts it does not implement (temporal discriminator, adapter...) are
  refused.

Before timing, narrow copies of both are run from the same weights and seed to check that
the bare step still computes ``Unsup3DLifter.train_step``'s losses (``--skip-check`` skips it).

The two alternate (bare, runner, bare, runner, ...) ``--repeats`` times, so that load from
other processes on a shared machine hits both alike; each repeat builds fresh models. The
result is the total samples over the total time of each, and the ratio runner/bare. Exits
with status 1 if that ratio is below ``--min-ratio``.

    python benchmarks/train_step_throughput.py [--iters 20 --warmup 3 --repeats 2]
"""
import argparse
import copy
import gc
import math
import os
import os.path as osp
import signal
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# The Runner's configuration: the project's runtime, the embedded mocap data and the paper's
# model, combined as a config of their own would inherit them.
BASE_CONFIGS = [
    osp.join(REPO, 'configs', '_base_', 'default_runtime.py'),
    osp.join(REPO, 'configs', '_base_', 'datasets', 'pybullet_mocap.py'),
    osp.join(REPO, 'configs', '_base_', 'models', 'unsup3d_reslifter_2ddisc.py'),
]
# normalize_2d's default RMS size (in units of 1/c) for scale_mode='rms'.
RMS_RATIO = 0.65


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
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=None,
                        help='timed iterations per run (default: 200 on CUDA, 20 on CPU)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed iterations before them (>= 1: the first iteration '
                        'allocates the optimiser states)')
    parser.add_argument('--batch-size', type=int, default=1024)
    parser.add_argument('--repeats', type=int, default=2,
                        help='bare/runner pairs, measured alternately')
    parser.add_argument('--device', default=None,
                        help='cpu, cuda or cuda:N (default: cuda if available, else cpu)')
    parser.add_argument('--amp-bf16', action='store_true',
                        help='bf16 autocast for both (CUDA only)')
    parser.add_argument('--min-ratio', type=float, default=0.9,
                        help='exit status 1 if runner/bare samples/s is below it')
    parser.add_argument('--skip-check', action='store_true',
                        help='do not first check that the bare step computes the same losses '
                        'as Unsup3DLifter.train_step')
    args = parser.parse_args()
    for name in ('iters', 'warmup', 'repeats'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if args.batch_size < 2:  # BatchNorm in training mode needs two samples
        parser.error(f'--batch-size must be >= 2, got {args.batch_size}')
    if args.device is not None and args.device.split(':')[0] not in ('cpu', 'cuda'):
        # The Runner puts the model on MMEngine's get_device() (CUDA if present, else CPU);
        # other device types could not be matched by both loops.
        parser.error(f'--device must be cpu, cuda or cuda:N, got {args.device!r}')
    return args


def compose_config(tmp_dir: str):
    """The Runner's base config: a file inheriting :data:`BASE_CONFIGS`, written to ``tmp_dir``."""
    from mmengine.config import Config
    path = osp.join(tmp_dir, 'train_step_throughput_config.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = {BASE_CONFIGS!r}\n')
    return Config.fromfile(path)


def bare_settings(model_cfg: Dict[str, Any]) -> Dict[str, Any]:
    """What the bare step needs to know of the model, read from a narrow ``Unsup3DLifter``.

    Reading the built parts (camera sampler, cycle losses, GAN loss, discriminator
    regularisers, flip) rather than the config gives their defaults for free. Parts the bare
    step does not reproduce are refused.

    Args:
        model_cfg: the ``model`` entry of the config.

    Returns:
        dict of ``root``, ``head``, ``c``, ``min_depth``, ``scale_mode``, ``bounds_deg``
        (azimuth, elevation, roll), ``w2d``, ``w3d``, ``wadv``, ``r1``, ``flip_prob`` and
        ``flip_index``.

    Raises:
        ValueError: naming the parts of the model the bare step does not implement.
    """
    from mmpose.registry import MODELS
    small = copy.deepcopy(model_cfg)
    for key in ('lifter', 'discriminator'):
        if small.get(key):
            small[key]['width'] = 8
    model = MODELS.build(small)
    unsupported = [name for name in ('temporal_discriminator', 'elevation_net', 'adapter',
                                     'keypoint_noise', 'sup_loss')
                   if getattr(model, name, None) is not None]
    if getattr(model, 'use_scores', False):
        unsupported.append('a confidence-aware lifter (in_channels=3)')
    if model.discriminator is None or getattr(model, 'gan_loss', None) is None:
        unsupported.append('no discriminator or no gan_loss')
    elif type(model.gan_loss).__name__ != 'GANLoss' or model.gan_loss.gan_type != 'vanilla':
        unsupported.append(f'gan_loss {model.gan_loss!r} (only a vanilla GANLoss)')
    sampler = model.camera_sampler
    if type(sampler).__name__ != 'RandomOrbitCameraSampler':
        unsupported.append(f'camera_sampler {type(sampler).__name__}')
    weights = {'ReprojectionConsistencyLoss': 0.0, 'RotationConsistencyLoss': 0.0}
    for loss in model.cycle_losses:
        if type(loss).__name__ not in weights:
            unsupported.append(f'cycle loss {type(loss).__name__}')
        else:
            weights[type(loss).__name__] += loss.loss_weight
    r1 = 0.0
    for aux in model.disc_auxiliary_losses:
        if type(aux).__name__ != 'R1GradientPenalty':
            unsupported.append(f'discriminator loss {type(aux).__name__}')
        else:
            r1 += aux.loss_weight
    flip = model.flip
    if flip is not None and type(flip).__name__ != 'RandomFlip2D':
        unsupported.append(f'flip {type(flip).__name__}')
    if unsupported:
        raise ValueError(f'The bare loop of this benchmark does not implement: {unsupported} '
                         f'(model of {BASE_CONFIGS[-1]}); update make_bare_step')
    max_roll = sampler.max_roll_deg
    return dict(
        root=model.root_idx, head=model.head_idx, c=model.depth_offset,
        min_depth=model.min_depth, scale_mode=model.scale_mode,
        bounds_deg=(sampler.max_azimuth_deg, sampler.max_elevation_deg,
                    sampler.max_elevation_deg / 2.0 if max_roll is None else max_roll),
        w2d=weights['ReprojectionConsistencyLoss'], w3d=weights['RotationConsistencyLoss'],
        wadv=model.gan_loss.loss_weight, r1=r1,
        flip_prob=0.0 if flip is None else flip.flip_prob,
        flip_index=None if flip is None else flip.flip_index.clone())


def adam_kwargs(optim_cfg: Dict[str, Any], key: str) -> Dict[str, Any]:
    """``torch.optim.Adam`` arguments of ``optim_wrapper.<key>.optimizer``."""
    opt = dict(optim_cfg[key]['optimizer'])
    if opt.pop('type') != 'Adam':
        raise ValueError(f'optim_wrapper.{key}.optimizer must be Adam for the bare loop, got '
                         f'{optim_cfg[key]["optimizer"]["type"]!r}')
    return opt


# ---------------------------------------------------------------------------- bare PyTorch
def make_bare_step(model_cfg: Dict[str, Any], optim_cfg: Dict[str, Any],
                   settings: Dict[str, Any], device, amp_bf16: bool
                   ) -> Tuple[Callable, List[Any]]:
    """Build fresh modules and Adam optimisers and the function doing one GAN step.

    Args:
        model_cfg: the ``model`` entry of the config (an ``Unsup3DLifter``).
        optim_cfg: the ``optim_wrapper`` entry (one Adam per network).
        settings: :func:`bare_settings` of the model.
        device: torch device.
        amp_bf16: run the forward passes under CUDA bf16 autocast.

    Returns:
        ``(step, modules)``: ``step(keypoints_2d)`` trains on a ``(B, J, 2)`` pixel batch and
        returns the (detached, scalar) generator and discriminator losses; ``modules`` are the
        lifter and the discriminator.
    """
    import torch
    import torch.nn.functional as F

    from mmpose.registry import MODELS

    # The project's classes (ResidualLifter, PoseDiscriminator2D), built from the config.
    lifter = MODELS.build(copy.deepcopy(model_cfg['lifter'])).to(device).train()
    disc = MODELS.build(copy.deepcopy(model_cfg['discriminator'])).to(device).train()
    g_opt = torch.optim.Adam(lifter.parameters(), **adam_kwargs(optim_cfg, 'lifter'))
    d_opt = torch.optim.Adam(disc.parameters(), **adam_kwargs(optim_cfg, 'discriminator'))

    root, head, c, min_depth = (settings[k] for k in ('root', 'head', 'c', 'min_depth'))
    scale_mode, flip_prob, r1_weight = (settings[k] for k in ('scale_mode', 'flip_prob', 'r1'))
    w2d, w3d, wadv = settings['w2d'], settings['w3d'], settings['wadv']
    bounds = torch.tensor(settings['bounds_deg'], device=device) * (math.pi / 180.0)
    flip_index = None if settings['flip_index'] is None else settings['flip_index'].to(device)

    def autocast():
        return torch.autocast('cuda', dtype=torch.bfloat16, enabled=amp_bf16)

    def normalise(kpts):  # (B, J, 2) -> root at 0, size 1/c; and the (B,) scale factor
        centred = kpts - kpts[:, root:root + 1]
        if scale_mode == 'head':
            size, target = centred[:, head].norm(dim=-1), 1.0 / c
        else:
            size, target = centred.pow(2).sum(-1).mean(-1).sqrt(), RMS_RATIO / c
        scale = target / size.clamp_min(1e-8)
        return centred * scale[:, None, None], scale

    def lift(x):  # (B, J, 2) normalised -> (B, J, 3): (x z, y z, z), z = max(min_depth, d + c)
        z = (lifter(x) + c).clamp_min(min_depth).unsqueeze(-1)
        return torch.cat([x * z, z], -1)

    def project(points):
        return points[..., :2] / points[..., 2:].clamp_min(min_depth)

    def rotations(batch, dtype):  # R = R_roll(z) R_elev(x) R_azim(y), uniform angles
        az, el, ro = ((torch.rand(batch, 3, device=device, dtype=dtype) * 2 - 1) *
                      bounds.to(dtype)).unbind(-1)
        zero, one = torch.zeros_like(az), torch.ones_like(az)
        ca, sa, ce, se, cr, sr = az.cos(), az.sin(), el.cos(), el.sin(), ro.cos(), ro.sin()
        r_az = torch.stack([ca, zero, sa, zero, one, zero, -sa, zero, ca], -1).view(-1, 3, 3)
        r_el = torch.stack([one, zero, zero, zero, ce, -se, zero, se, ce], -1).view(-1, 3, 3)
        r_ro = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).view(-1, 3, 3)
        return r_ro @ r_el @ r_az

    def step(keypoints_2d):
        # ---- generator (lifter): the cycle and the adversarial term
        with autocast():
            x, _ = normalise(keypoints_2d)
            if flip_prob > 0:
                flip = torch.rand(x.shape[0], device=device) < flip_prob
                mirrored = x[:, flip_index].clone()
                mirrored[..., 0] = -mirrored[..., 0]
                x = torch.where(flip[:, None, None], mirrored, x)
            x3d = lift(x)
            root_pt = x3d[:, root:root + 1]
            pose = x3d - root_pt
            rot = rotations(x.shape[0], x.dtype)
            pose_rot = pose @ rot.transpose(-1, -2)
            fake, scale = normalise(project(pose_rot + root_pt))
            x3d2 = lift(fake)
            pose2 = (x3d2 - x3d2[:, root:root + 1]) / scale[:, None, None]
            loss_3d = (pose2 - pose_rot).norm(dim=-1).mean()
            loss_2d = (project(pose2 @ rot + root_pt) - x).norm(dim=-1).mean()
            # The discriminator scores the fakes frozen: no gradient of its weights here.
            disc.requires_grad_(False)
            logits = disc(fake)
            disc.requires_grad_(True)
            loss_adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        g_loss = w2d * loss_2d + w3d * loss_3d + wadv * loss_adv
        g_loss.backward()
        g_opt.step()
        g_opt.zero_grad()
        # ---- discriminator: real vs. (detached) fake in one batch, R1 penalty on the reals
        with autocast():
            real = x.detach()
            if r1_weight > 0:
                real.requires_grad_(True)
            logits = disc(torch.cat([real, fake.detach()], 0))
            real_logits, fake_logits = logits.split([real.shape[0], fake.shape[0]])
            d_loss = 0.5 * (
                F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) +
                F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
            if r1_weight > 0:
                grad, = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
                d_loss = d_loss + 0.5 * r1_weight * grad.flatten(1).pow(2).sum(1).mean()
        d_loss.backward()
        d_opt.step()
        d_opt.zero_grad()
        return g_loss.detach(), d_loss.detach()

    return step, [lifter, disc]


def run_bare(model_cfg, optim_cfg, settings, poses, args, device, sync: Callable[[], None]
             ) -> Tuple[int, Tuple[float, float], int]:
    """Train the bare loop for ``warmup + iters`` iterations; time the last ``iters``.

    Args:
        poses: ``(N, J, 2)`` training 2D poses on ``device``.

    Returns:
        ``(samples, (wall, CPU) seconds, parameters)`` of the timed iterations.
    """
    import torch
    step, modules = make_bare_step(model_cfg, optim_cfg, settings, device, args.amp_bf16)
    params = sum(p.numel() for m in modules for p in m.parameters())
    batch = args.batch_size
    per_epoch = len(poses) // batch  # full batches only, as the Runner's sampler serves
    order, pos = None, per_epoch
    samples, start = 0, clock()
    for i in range(args.warmup + args.iters):
        if i == args.warmup:
            sync()
            start = clock()
        if pos == per_epoch:  # a new shuffled epoch
            order, pos = torch.randperm(len(poses), device=device), 0
        step(poses[order[pos * batch:(pos + 1) * batch]])
        pos += 1
        if i >= args.warmup:
            samples += batch
    sync()
    return samples, elapsed(start, clock()), params


def check_same_step(model_cfg: Dict[str, Any], optim_cfg: Dict[str, Any],
                    settings: Dict[str, Any], base_cfg, poses, device, steps: int = 2,
                    width: int = 64, batch: int = 64) -> None:
    """Check that the bare step still is ``Unsup3DLifter.train_step``, on narrow networks.

    Both start from the same weights and seed; the bare step draws its random numbers (flips,
    dropout, cameras) in the model's order, so their losses must agree at every step (and with
    them the Adam updates). Narrow networks keep this to a fraction of a second.

    Raises:
        RuntimeError: naming the step and both losses when they differ.
    """
    import torch
    from mmengine.optim import build_optim_wrapper

    from mmpose.registry import MODELS
    small = copy.deepcopy(model_cfg)
    for key in ('lifter', 'discriminator'):
        small[key]['width'] = width
    model = MODELS.build(small).to(device).train()
    optim_wrapper = build_optim_wrapper(model, base_cfg.optim_wrapper)
    step, (lifter, disc) = make_bare_step(small, optim_cfg, settings, device, amp_bf16=False)
    lifter.load_state_dict(model.lifter.state_dict())
    disc.load_state_dict(model.discriminator.state_dict())
    for i in range(steps):
        kpts = poses[i * batch:(i + 1) * batch]
        torch.manual_seed(i)
        log = model.train_step({'inputs': {'keypoints_2d': kpts.clone()}}, optim_wrapper)
        torch.manual_seed(i)
        g_bare, d_bare = step(kpts.clone())
        # The model logs each term: loss_2d, loss_3d, loss_adv; loss_disc, loss_disc_r1.
        d_model = sum(v for k, v in log.items() if k.startswith('loss_disc')).detach()
        g_model = sum(v for k, v in log.items() if 'loss' in k and k != 'loss' and
                      not k.startswith('loss_disc')).detach()
        for name, ours, theirs in (('generator', g_bare, g_model),
                                   ('discriminator', d_bare, d_model)):
            if not torch.allclose(ours, theirs.to(ours), rtol=1e-4, atol=1e-6):
                raise RuntimeError(
                    f'The bare loop is no longer the model\'s step: {name} loss at step {i} is '
                    f'{float(ours):.6g}, Unsup3DLifter.train_step gives {float(theirs):.6g}; '
                    'update make_bare_step to the model (or pass --skip-check)')


# ---------------------------------------------------------------------------- MMEngine Runner
def make_step_clock(warmup: int, iters: int, sync: Callable[[], None]):
    """A hook timing iterations ``warmup .. warmup + iters - 1`` of a train loop."""
    from mmengine.hooks import Hook

    class StepClock(Hook):
        """Timestamps at ``after_train_iter``; register it with the lowest priority.

        From the end of the last warm-up iteration to the end of the last one, so every
        timed iteration is counted whole (the loop fetches the batch before
        ``before_train_iter``) and ends after the other hooks' ``after_train_iter``.
        """

        def __init__(self) -> None:
            self.start: Optional[Tuple[float, float]] = None
            self.stop: Optional[Tuple[float, float]] = None
            self.samples = 0

        def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                             outputs=None) -> None:
            if batch_idx >= warmup:
                self.samples += len(data_batch['inputs']['keypoints_2d'])
            if batch_idx == warmup - 1:
                sync()
                self.start = clock()
            elif batch_idx == warmup + iters - 1:
                sync()
                self.stop = clock()

    return StepClock()


def runner_config(base_cfg, args, work_dir: str, run: int):
    """The Runner's config: ``warmup + iters`` iterations, nothing else than training."""
    cfg = copy.deepcopy(base_cfg)
    cfg.work_dir = work_dir
    # Runners built in the same second would otherwise share MMEngine's global instances.
    cfg.experiment_name = f'train_step_throughput_{run}_{uuid.uuid4().hex[:8]}'
    cfg.visualizer.name = cfg.experiment_name
    cfg.log_level = 'WARNING'  # no config/environment dump on stdout
    max_iters = args.warmup + args.iters
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    # MMEngine's sampler for iteration-based loops: one endless shuffled stream of full
    # batches. The config's DefaultSampler would restart the loader every few batches on this
    # small dataset, with a warning each time.
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                         val_interval=max_iters + 1)
    for split in ('val', 'test'):
        cfg[f'{split}_cfg'] = cfg[f'{split}_dataloader'] = cfg[f'{split}_evaluator'] = None
    cfg.default_hooks.checkpoint = None  # no checkpoint written inside the timed span
    cfg.default_hooks.logger.interval = max_iters + 1  # logging rare: no line in the run
    cfg.log_processor.by_epoch = False
    cfg.launcher = 'none'
    cfg.resume, cfg.load_from = False, None
    if args.amp_bf16:
        for key, entry in cfg.optim_wrapper.items():
            if key != 'constructor':
                entry.type = 'AmpOptimWrapper'
                entry.dtype = 'bfloat16'
                # bf16 has float32's range: no loss scaling (and no per-step inf check, which
                # the bare loop does not have either).
                entry.loss_scale = dict(enabled=False)
    return cfg


def run_runner(base_cfg, args, work_dir: str, run: int, sync: Callable[[], None]
               ) -> Tuple[int, Tuple[float, float]]:
    """``runner.train()``; returns ``(samples, (wall, CPU) seconds)`` of the timed iterations."""
    from mmengine.runner import Runner
    runner = Runner.from_cfg(runner_config(base_cfg, args, work_dir, run))
    step_clock = make_step_clock(args.warmup, args.iters, sync)
    runner.register_hook(step_clock, priority='LOWEST')
    runner.train()
    if step_clock.start is None or step_clock.stop is None:
        raise RuntimeError(f'The Runner ran {runner.iter} of {args.warmup + args.iters} '
                           'iterations: the timing hook saw no start or no end')
    return step_clock.samples, elapsed(step_clock.start, step_clock.stop)


# ---------------------------------------------------------------------------- main
def main() -> int:
    args = parse_args()
    # A plain SIGTERM ends Python without unwinding: exit through SystemExit instead, so the
    # temporary work folder of the Runners is removed as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.device is not None and args.device.startswith('cpu'):
        # MMEngine's Runner takes CUDA whenever it is visible; hide it before anything
        # initialises CUDA, so that both loops run on the CPU.
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    import mmengine
    import torch

    from mmpose.registry import DATASETS
    from mmunsup3d.utils import register_all_modules
    register_all_modules()

    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise RuntimeError(f'--device {args.device}: CUDA is not available')
        if device.index is not None:
            torch.cuda.set_device(device)  # the Runner's model.to('cuda') uses this one
        device = torch.device('cuda', torch.cuda.current_device())
        name = torch.cuda.get_device_name(device)
    else:
        name = 'CPU'
    if args.amp_bf16 and device.type != 'cuda':
        raise RuntimeError('--amp-bf16 needs a CUDA device (MMEngine\'s AmpOptimWrapper '
                           f'refuses the CPU); got --device {device}')
    if args.iters is None:  # a CUDA step takes milliseconds, a CPU one seconds
        args.iters = 200 if device.type == 'cuda' else 20

    def sync() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    print(f'torch {torch.__version__}, mmengine {mmengine.__version__}; '
          f'{torch.get_num_threads()} CPU thread(s) (OMP_NUM_THREADS='
          f'{os.environ.get("OMP_NUM_THREADS", "unset")}, {os.cpu_count()} cores); '
          f'device {device} [{name}]; bf16 autocast {"on" if args.amp_bf16 else "off"}')

    with tempfile.TemporaryDirectory(prefix='train_step_throughput_') as tmp:
        base_cfg = compose_config(tmp)
        model_cfg = base_cfg.model.to_dict()
        optim_cfg = base_cfg.optim_wrapper.to_dict()
        settings = bare_settings(model_cfg)
        # The bare loop's data: the Runner's training set, in memory on the device.
        dataset = DATASETS.build(base_cfg.train_dataloader.dataset)
        if args.batch_size > len(dataset):
            raise ValueError(f'--batch-size {args.batch_size} is larger than the training set '
                             f'({len(dataset)} poses of {dataset.data_file})')
        poses = torch.from_numpy(dataset.arrays['keypoints_2d']).to(device)
        if not args.skip_check:
            check_same_step(model_cfg, optim_cfg, settings, base_cfg, poses, device)
            print('check: the bare step reproduces Unsup3DLifter.train_step\'s losses')
        lifter, disc = model_cfg['lifter'], model_cfg['discriminator']
        print(f'model: {lifter["type"]} {lifter.get("width")} x {lifter.get("num_blocks")} '
              f'blocks, {disc["type"]} {disc.get("width")} x {disc.get("num_blocks")} blocks, '
              f'flip {settings["flip_prob"]:g}, R1 weight {settings["r1"]:g}; batch '
              f'{args.batch_size}; {len(dataset)} training poses; '
              f'{args.warmup} warm-up + {args.iters} timed iterations, '
              f'{args.repeats} repeat(s)')

        # Per loop: samples, wall seconds, CPU seconds.
        totals = {'bare': [0, 0.0, 0.0], 'runner': [0, 0.0, 0.0]}
        for r in range(args.repeats):
            torch.manual_seed(r)
            samples, (wall, cpu), params = run_bare(model_cfg, optim_cfg, settings, poses,
                                                    args, device, sync)
            totals['bare'] = [a + b for a, b in zip(totals['bare'], (samples, wall, cpu))]
            line = f'repeat {r + 1}/{args.repeats}: bare {samples / wall:,.0f} samples/s ' \
                   f'(CPU {cpu / wall:.2f} s/s)'
            gc.collect()
            if device.type == 'cuda':
                torch.cuda.empty_cache()
            samples, (wall, cpu) = run_runner(base_cfg, args, osp.join(tmp, f'runner_{r}'), r,
                                              sync)
            totals['runner'] = [a + b for a, b in zip(totals['runner'], (samples, wall, cpu))]
            gc.collect()
            if device.type == 'cuda':
                torch.cuda.empty_cache()
            print(f'{line}, runner {samples / wall:,.0f} samples/s (CPU {cpu / wall:.2f} s/s); '
                  f'{params / 1e6:.1f} M parameters', flush=True)

    (n_bare, wall_bare, cpu_bare), (n_runner, wall_runner, cpu_runner) = \
        totals['bare'], totals['runner']
    bare, runner = n_bare / wall_bare, n_runner / wall_runner
    ratio = runner / bare
    ok = ratio >= args.min_ratio
    print(f'bare PyTorch: {bare:,.0f} samples/s; Runner: {runner:,.0f} samples/s '
          f'({n_bare:,} and {n_runner:,} samples over {args.repeats} repeat(s))')
    # Samples per CPU-second: what the ratio would be if no other process took a core.
    print(f'by process CPU time: bare {n_bare / cpu_bare:,.0f}, Runner '
          f'{n_runner / cpu_runner:,.0f} samples per CPU-second, ratio '
          f'{(n_runner / cpu_runner) / (n_bare / cpu_bare):.3f}')
    print(f'ratio runner/bare: {ratio:.3f} (need >= {args.min_ratio:g}): '
          f'{"OK" if ok else "FAIL: the Runner costs more than allowed"}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
