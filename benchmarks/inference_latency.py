"""How close is ``lift_keypoints`` to the lifting network's own forward pass?

Measures, in one process, on 2D poses of the embedded motion capture (test split):

- **latency** for 1, 4 and 16 poses per call (``--batch-sizes``; a live MMPose pipeline lifts
  one or a few people per frame) of

  - **bare**: ``model.lifter(x)`` under ``torch.inference_mode()`` on the already normalised
    input ``x`` (the network alone: no validation, normalisation or back-projection);
  - **lift_keypoints**: ``mmunsup3d.apis.lift_keypoints(model, keypoints)`` from pixels
    (checks, normalisation, lift, back-projection, output checks, NumPy in and out);
  - **mmpose**: ``mmpose.apis.inference_pose_lifter_model`` on the same weights converted to an
    MMPose ``PoseLifter`` (``tools/misc/convert_to_mmpose_lifter.py``), one frame holding the
    poses as ``PoseDataSample`` s (as a 2D model's results arrive); its 3D must equal
    ``lift_keypoints``' (the largest difference is printed);

  the calls interleaved round by round, median seconds per call;
- **throughput** with ``--throughput-batch`` poses per call of ``lift_keypoints`` and of the bare
  forward, beside the **GEMM bound**: the ``torch.mm`` products of the same sizes as the
  network's linear layers, timed alone; poses/s at that bound is what the network could reach
  if everything but its matrix products were free.

Exits with status 1 when single-pose ``lift_keypoints`` takes more than
``--max-latency-factor`` x bare + ``--max-latency-extra-ms``, or the batched throughput is below
``--min-gemm-fraction`` of the GEMM bound.

    python benchmarks/inference_latency.py [--model unsup3d] [--device cuda [--amp-bf16]]
"""
import argparse
import functools
import importlib.util
import os.path as osp
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
for path in (REPO, osp.dirname(osp.abspath(__file__))):
    if path not in sys.path:
        sys.path.insert(0, path)

from _common import (add_device_args, autocast, describe_machine, interleaved_medians,  # noqa
                     make_sync, resolve_device)

CONVERTER = osp.join(REPO, 'tools', 'misc', 'convert_to_mmpose_lifter.py')


def parse_args() -> Tuple[argparse.Namespace, torch.device]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='unsup3d',
                        help='zoo name (default: the recommended model) or config path')
    parser.add_argument('--checkpoint', default=None, help='weights for a config --model')
    parser.add_argument('--width', type=int, default=None,
                        help='lifter width: random weights of this width instead of the zoo '
                        'weights (quick runs)')
    parser.add_argument('--batch-sizes', default='1,4,16', help='poses per latency call')
    parser.add_argument('--throughput-batch', type=int, default=4096)
    parser.add_argument('--iters', type=int, default=300, help='timed rounds per latency size')
    parser.add_argument('--throughput-iters', type=int, default=None,
                        help='timed rounds of the batched measurement (default: iters / 20)')
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--skip-mmpose', action='store_true', help='no MMPose API latency')
    parser.add_argument('--max-latency-factor', type=float, default=2.0)
    parser.add_argument('--max-latency-extra-ms', type=float, default=0.1)
    parser.add_argument('--min-gemm-fraction', type=float, default=0.7)
    add_device_args(parser)
    args = parser.parse_args()
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(',')]
    for name in ('iters', 'warmup', 'throughput_batch'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    if min(args.batch_sizes) < 1:
        parser.error(f'--batch-sizes must be >= 1, got {args.batch_sizes}')
    args.throughput_iters = args.throughput_iters or max(2, args.iters // 20)
    return args, resolve_device(parser, args.device, args.amp_bf16)


def load_model(args: argparse.Namespace, device: torch.device) -> torch.nn.Module:
    """The lifter to measure: the zoo/config weights, or random ones of ``--width``."""
    from mmunsup3d.apis import init_lifter
    if args.width is None:
        return init_lifter(args.model, args.checkpoint, device=device)
    from mmunsup3d.utils.zoo import resolve_model
    config = args.model if osp.isfile(args.model) else resolve_model(args.model)['config']
    torch.manual_seed(0)
    return init_lifter(config, None, device=device,
                       cfg_options={'model.lifter.width': args.width})


@functools.lru_cache(maxsize=1)
def _mocap_test_poses() -> np.ndarray:
    from mmunsup3d.datasets import MocapProjectionDataset
    return MocapProjectionDataset(split='test').arrays['keypoints_2d']


def test_poses(num: int) -> np.ndarray:
    """``(num, 17, 2)`` pixel poses: the embedded mocap's test split, repeated as needed."""
    poses = _mocap_test_poses()
    return np.ascontiguousarray(poses[np.arange(num) % len(poses)])


def bare_input(model: torch.nn.Module, kpts: np.ndarray, device: torch.device) -> torch.Tensor:
    """The lifter's input for ``kpts``: normalised 2D, plus a score channel of ones when the
    lifter is confidence-aware (as ``lift_keypoints`` without scores feeds it)."""
    with torch.inference_mode():
        x = model.normalize(torch.from_numpy(kpts).to(device))
        if model.use_scores:
            x = torch.cat([x, x.new_ones(x.shape[:-1] + (1, ))], -1)
    return x.clone()  # a normal tensor: the timed calls start from the same kind of input


def gemm_bound(model: torch.nn.Module, batch: int, device: torch.device,
               dtype: torch.dtype) -> Tuple[Optional[Callable[[], None]], float]:
    """``torch.mm`` of every linear layer's shape at ``batch`` rows, and its FLOPs.

    Returns:
        ``(function, FLOPs per call)``; ``(None, 0)`` for a lifter without linear layers.
    """
    layers = [m for m in model.lifter.modules() if isinstance(m, torch.nn.Linear)]
    if not layers:
        return None, 0.0
    inputs = [torch.randn(batch, m.in_features, device=device, dtype=dtype) for m in layers]
    weights = [m.weight.detach().to(dtype).t() for m in layers]  # as F.linear multiplies

    def run() -> None:
        for a, w in zip(inputs, weights):
            torch.mm(a, w)

    return run, float(sum(2 * batch * m.in_features * m.out_features for m in layers))


# ---------------------------------------------------------------------------- MMPose path
def convert_to_mmpose(model: torch.nn.Module, tmp: str, device: torch.device):
    """The same weights as an MMPose ``PoseLifter`` (the project's converter), on ``device``."""
    from mmengine.runner import save_checkpoint
    from mmpose.apis import init_model
    spec = importlib.util.spec_from_file_location('convert_to_mmpose_lifter', CONVERTER)
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    src_ckpt, src_cfg = osp.join(tmp, 'lifter.pth'), osp.join(tmp, 'lifter_config.py')
    model.cfg.dump(src_cfg)
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {}}, src_ckpt)
    out_ckpt = osp.join(tmp, 'poselifter.pth')
    out_cfg = converter.convert(src_ckpt, out_ckpt, config=src_cfg)
    return init_model(out_cfg, out_ckpt, device=str(device))


def mmpose_frame(kpts: np.ndarray) -> List[list]:
    """One video frame of 2D results as ``inference_pose_lifter_model`` takes them."""
    from mmengine.structures import InstanceData
    from mmpose.structures import PoseDataSample
    frame = []
    for track_id, pose in enumerate(kpts):
        sample = PoseDataSample()
        sample.pred_instances = InstanceData(
            keypoints=pose[None], keypoint_scores=np.ones((1, len(pose)), np.float32),
            bboxes=np.concatenate([pose.min(0), pose.max(0)])[None])
        sample.gt_instances = InstanceData()
        sample.track_id = track_id
        frame.append(sample)
    return [frame]


def mmpose_lift(mm_model) -> Callable[[List[list]], np.ndarray]:
    """``frames -> (N, 17, 3)`` 3D through MMPose's API."""
    from mmpose.apis import inference_pose_lifter_model

    def lift(frames: List[list]) -> np.ndarray:
        results = inference_pose_lifter_model(mm_model, frames, with_track_id=True)
        return np.stack([r.pred_instances.keypoints[0] for r in results])

    return lift


# ---------------------------------------------------------------------------- measurements
def latency_fns(model, mm_lift, kpts: np.ndarray, device, amp) -> Dict[str, Callable]:
    """The functions timed for one latency size (``mm_lift`` ``None``: no MMPose path)."""
    from mmunsup3d.apis import lift_keypoints
    x = bare_input(model, kpts, device)

    def bare() -> None:
        with torch.inference_mode(), amp():
            model.lifter(x)

    def lift() -> None:
        with amp():
            lift_keypoints(model, kpts)

    fns = {'bare': bare, 'lift_keypoints': lift}
    if mm_lift is not None:
        frames = mmpose_frame(kpts)

        def mmpose() -> None:
            with amp():
                mm_lift(frames)

        fns['mmpose'] = mmpose
    return fns


def measure_latency(model, mm_lift, args, device, sync, amp) -> Dict[int, Dict[str, float]]:
    """Median seconds per call for each ``--batch-sizes`` entry; prints a line per size."""
    from mmunsup3d.apis import lift_keypoints
    out = {}
    for batch in args.batch_sizes:
        kpts = test_poses(batch)
        if mm_lift is not None:  # the MMPose model must compute what lift_keypoints does
            with amp():
                gap = np.abs(mm_lift(mmpose_frame(kpts)) - lift_keypoints(model, kpts)).max()
        times = interleaved_medians(latency_fns(model, mm_lift, kpts, device, amp),
                                    args.iters, args.warmup, sync)
        out[batch] = times
        line = ', '.join(f'{k} {v * 1e3:.3f} ms' for k, v in times.items())
        extra = f' (3D vs lift_keypoints: max |diff| {gap:.1e} m)' if mm_lift else ''
        print(f'latency, {batch} pose(s) per call: {line}; lift_keypoints / bare '
              f'{times["lift_keypoints"] / times["bare"]:.2f}{extra}', flush=True)
    return out


def measure_throughput(model, args, device, sync, amp) -> Dict[str, float]:
    """Poses/s of the batched lift, the bare forward and the GEMM bound; prints them."""
    from mmunsup3d.apis import lift_keypoints
    batch = args.throughput_batch
    kpts = test_poses(batch)
    x = bare_input(model, kpts, device)
    dtype = torch.bfloat16 if args.amp_bf16 else torch.float32
    gemm, flops = gemm_bound(model, batch, device, dtype)

    def bare() -> None:
        with torch.inference_mode(), amp():
            model.lifter(x)

    fns = {'lift_keypoints': lambda: lift_keypoints(model, kpts, batch_size=batch),
           'bare': bare}
    if gemm is not None:
        fns['gemm'] = lambda: torch.inference_mode()(gemm)()
    with amp():
        times = interleaved_medians(fns, args.throughput_iters, max(1, args.warmup // 10), sync)
    rates = {k: batch / v for k, v in times.items()}
    gemm_line = (f'; GEMM bound {rates["gemm"]:,.0f} poses/s ({flops / times["gemm"] / 1e9:.1f} '
                 f'GFLOP/s, {flops / batch / 1e6:.2f} MFLOP per pose)') if gemm else ''
    print(f'throughput, {batch} poses per call: lift_keypoints {rates["lift_keypoints"]:,.0f} '
          f'poses/s, bare {rates["bare"]:,.0f} poses/s{gemm_line}', flush=True)
    return rates


def verdict(args, latency: Dict[int, Dict[str, float]], rates: Dict[str, float]) -> bool:
    """Print each threshold with its measured value; True when all are met."""
    ok = True
    if 1 in latency:
        bare, lift = latency[1]['bare'] * 1e3, latency[1]['lift_keypoints'] * 1e3
        limit = args.max_latency_factor * bare + args.max_latency_extra_ms
        good = lift <= limit
        ok &= good
        print(f'single pose: lift_keypoints {lift:.3f} ms, limit {args.max_latency_factor:g} x '
              f'bare {bare:.3f} ms + {args.max_latency_extra_ms:g} ms = {limit:.3f} ms: '
              f'{"OK" if good else "FAIL"}')
    if 'gemm' in rates:
        frac = rates['lift_keypoints'] / rates['gemm']
        good = frac >= args.min_gemm_fraction
        ok &= good
        print(f'batched: lift_keypoints at {frac:.2f} of the GEMM bound (bare forward '
              f'{rates["bare"] / rates["gemm"]:.2f}), need >= {args.min_gemm_fraction:g}: '
              f'{"OK" if good else "FAIL"}')
    return ok


def main() -> int:
    args, device = parse_args()
    from mmunsup3d.utils import register_all_modules
    register_all_modules()
    sync, amp = make_sync(device), autocast(device, args.amp_bf16)
    print(describe_machine(device, args.amp_bf16))
    model = load_model(args, device)
    params = sum(p.numel() for p in model.lifter.parameters())
    print(f'model: {args.model}{"" if args.width is None else f" (random, width {args.width})"}'
          f', {type(model.lifter).__name__} {params / 1e6:.2f} M parameters; latency: '
          f'{args.warmup} + {args.iters} rounds, throughput: {args.throughput_iters} rounds')
    with tempfile.TemporaryDirectory(prefix='inference_latency_') as tmp:
        mm_lift = None if args.skip_mmpose else mmpose_lift(convert_to_mmpose(model, tmp, device))
        latency = measure_latency(model, mm_lift, args, device, sync, amp)
    rates = measure_throughput(model, args, device, sync, amp)
    return 0 if verdict(args, latency, rates) else 1


if __name__ == '__main__':
    sys.exit(main())
