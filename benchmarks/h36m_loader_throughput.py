"""Is the Human3.6M train loader fast enough to keep the training step busy?

Builds the train dataset of a Human3.6M config on the fixture (``make_h36m_fixture.py``, into a
temporary folder), tiles its arrays in memory to Human3.6M's size (1,559,752 training poses at
50 fps), builds the train ``DataLoader`` exactly as the config does (sampler, batch size,
workers, collate), and times:

- the loader: poses/s over ``--loader-batches`` batches after the first one (the first batch,
  which includes worker start-up and the epoch's shuffle, is reported separately);
- the training step: ``Unsup3DLifter.train_step`` with the config's model and
  ``OptimWrapperDict`` on batches from that loader (CUDA if available, else CPU; ``--amp-bf16``:
  bf16 ``AmpOptimWrapper`` s, CUDA only).

Exits with status 1 if the loader is not at least ``--min-ratio`` (5) times faster than the step.

    python benchmarks/h36m_loader_throughput.py [--config configs/unsup3d_h36m.py]
"""
import argparse
import importlib.util
import os.path as osp
import sys
import tempfile
import time
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
for _path in (REPO, osp.dirname(osp.abspath(__file__))):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from _common import add_device_args, describe_machine, make_sync, resolve_device  # noqa: E402

H36M_TRAIN_POSES = 1_559_752  # MMPose's fps50 h36m_train.npz


def _load_fixture_tool():
    path = osp.join(REPO, 'tools', 'dataset_converters', 'make_h36m_fixture.py')
    spec = importlib.util.spec_from_file_location('make_h36m_fixture', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tile_arrays(arrays: Dict[str, np.ndarray], size: int) -> Dict[str, np.ndarray]:
    """Repeat the rows of ``arrays`` up to ``size`` (``next_index`` stays inside each copy)."""
    n = len(arrays['keypoints_2d'])
    rows = np.arange(size) % n
    out = {k: np.ascontiguousarray(v[rows]) for k, v in arrays.items() if k != 'next_index'}
    if 'next_index' in arrays:
        nxt = arrays['next_index'][rows]
        nxt = np.where(nxt >= 0, nxt + (np.arange(size) // n) * n, -1)
        out['next_index'] = np.where(nxt < size, nxt, -1)
    return out


def parse_args() -> Tuple[argparse.Namespace, torch.device]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=osp.join(REPO, 'configs', 'unsup3d_h36m.py'))
    parser.add_argument('--poses', type=int, default=H36M_TRAIN_POSES,
                        help='size the fixture is tiled to')
    parser.add_argument('--loader-batches', type=int, default=2000)
    parser.add_argument('--steps', type=int, default=5, help='timed training steps')
    parser.add_argument('--warmup-steps', type=int, default=1)
    parser.add_argument('--batch-size', type=int, default=None,
                        help='override the config\'s train_dataloader.batch_size')
    parser.add_argument('--width', type=int, default=None,
                        help='width of the lifter and the discriminator(s) (quick runs)')
    parser.add_argument('--num-workers', type=int, default=None,
                        help='override the config\'s train_dataloader.num_workers')
    parser.add_argument('--min-ratio', type=float, default=5.0)
    add_device_args(parser)
    args = parser.parse_args()
    for name in ('poses', 'loader_batches', 'steps', 'warmup_steps'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    return args, resolve_device(parser, args.device, args.amp_bf16)


def build_dataset(cfg, poses: int):
    """The config's train dataset on the fixture, its arrays tiled to ``poses`` rows."""
    from mmpose.registry import DATASETS
    fixture = _load_fixture_tool()
    with tempfile.TemporaryDirectory() as tmp:
        root = osp.join(tmp, 'h36m')
        fixture.write_fixture(root)
        ds_cfg = cfg.train_dataloader.dataset.copy()
        ds_cfg.data_root = root
        dataset = DATASETS.build(ds_cfg)
    tic = time.perf_counter()
    base = len(dataset)
    dataset.arrays = tile_arrays(dataset.arrays, poses)
    print(f'dataset: {type(dataset).__name__}, fixture {base} poses tiled to {len(dataset)} '
          f'in {time.perf_counter() - tic:.2f} s; arrays '
          f'{ {k: tuple(v.shape) for k, v in dataset.arrays.items()} }')
    return dataset


def build_loader(cfg, dataset, args):
    """The train ``DataLoader`` exactly as the config builds it (with the overrides)."""
    from mmengine.runner import Runner
    dl_cfg = cfg.train_dataloader.copy()
    dl_cfg.dataset = dataset
    if args.batch_size is not None:
        dl_cfg.batch_size = args.batch_size
    if args.num_workers is not None:
        dl_cfg.num_workers = args.num_workers
        dl_cfg.persistent_workers = args.num_workers > 0 and dl_cfg.get('persistent_workers')
    loader = Runner.build_dataloader(dl_cfg, seed=0)
    print(f'loader: batch {loader.batch_size} per GPU, num_workers '
          f'{dl_cfg.get("num_workers", 0)}, {len(loader)} batches per epoch')
    return loader


def time_loader(loader, args) -> Tuple[float, List[Any]]:
    """Poses/s of the loader after its first batch; returns it and the batches kept for the
    training step."""
    num_batches = min(args.loader_batches, len(loader) - 1)  # within one epoch
    tic = time.perf_counter()
    it = iter(loader)
    batches: List[Any] = [next(it)]
    first_s = time.perf_counter() - tic
    tic = time.perf_counter()
    for _ in range(num_batches):
        batch = next(it)
        if len(batches) < args.steps + args.warmup_steps:
            batches.append(batch)
    loader_s = time.perf_counter() - tic
    del it
    rate = num_batches * loader.batch_size / loader_s
    print(f'loader: first batch {first_s * 1e3:.0f} ms (workers + shuffle of '
          f'{len(loader.dataset)}), then {num_batches} batches in {loader_s:.2f} s = '
          f'{rate:,.0f} poses/s')
    return rate, batches


def time_steps(cfg, batches: List[Any], args, device: torch.device) -> float:
    """Poses/s of ``Unsup3DLifter.train_step`` with the config's optimizer wrappers."""
    from mmengine.optim import build_optim_wrapper
    from mmpose.registry import MODELS
    model = MODELS.build(cfg.model).to(device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    sync = make_sync(device)
    for batch in batches[:args.warmup_steps]:
        model.train_step(batch, optim_wrapper)
    sync()
    timed = batches[args.warmup_steps:args.warmup_steps + args.steps]
    if not timed:
        raise ValueError(f'the loader served {len(batches)} batch(es): fewer than '
                         f'--warmup-steps + 1; raise --poses or --loader-batches')
    tic = time.perf_counter()
    for batch in timed:
        model.train_step(batch, optim_wrapper)
    sync()
    step_s = time.perf_counter() - tic
    batch_size = len(timed[0]['inputs']['keypoints_2d'])
    rate = len(timed) * batch_size / step_s
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f'train step: {len(timed)} steps of {batch_size} in {step_s:.2f} s = '
          f'{rate:,.0f} poses/s ({params:.1f} M parameters, {device})')
    return rate


def load_config(args):
    """The config with ``--width`` and, for ``--amp-bf16``, bf16 ``AmpOptimWrapper`` s."""
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    for name in ('lifter', 'discriminator', 'temporal_discriminator'):
        if args.width is not None and cfg.model.get(name):
            cfg.model[name].width = args.width
    if args.amp_bf16:
        entries = cfg.optim_wrapper.items() if 'constructor' in cfg.optim_wrapper else \
            [('', cfg.optim_wrapper)]
        for key, entry in entries:
            if key != 'constructor':  # bf16 has float32's range: no loss scaling
                entry.update(type='AmpOptimWrapper', dtype='bfloat16',
                             loss_scale=dict(enabled=False))
    return cfg


def main() -> int:
    args, device = parse_args()
    from mmunsup3d.utils import register_all_modules
    register_all_modules()
    print(describe_machine(device, args.amp_bf16))
    cfg = load_config(args)
    loader = build_loader(cfg, build_dataset(cfg, args.poses), args)
    loader_rate, batches = time_loader(loader, args)
    step_rate = time_steps(cfg, batches, args, device)
    ratio = loader_rate / step_rate
    ok = ratio >= args.min_ratio
    print(f'ratio loader/step: {ratio:.1f}x (need >= {args.min_ratio:g}x): '
          f'{"OK" if ok else "FAIL: the loader would starve the step"}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
