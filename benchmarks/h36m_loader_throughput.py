"""Is the Human3.6M train loader fast enough to keep the training step busy?

Builds the train dataset of a Human3.6M config on the fixture (``make_h36m_fixture.py``, into a
temporary folder), tiles its arrays in memory to Human3.6M's size (1,559,752 training poses at
50 fps), builds the train ``DataLoader`` exactly as the config does (sampler, batch size,
workers, collate), and times:

- the loader: poses/s over ``--loader-batches`` batches after the first one (the first batch,
  which includes worker start-up and the epoch's shuffle, is reported separately);
- the training step: ``Unsup3DLifter.train_step`` with the config's model and
  ``OptimWrapperDict`` on batches from that loader (CUDA if available, else CPU).

Exits with status 1 if the loader is not at least ``--min-ratio`` (5) times faster than the step.

    python benchmarks/h36m_loader_throughput.py [--config configs/unsup3d_h36m.py]
"""
import argparse
import importlib.util
import os.path as osp
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=osp.join(REPO, 'configs', 'unsup3d_h36m.py'))
    parser.add_argument('--poses', type=int, default=H36M_TRAIN_POSES,
                        help='size the fixture is tiled to')
    parser.add_argument('--loader-batches', type=int, default=2000)
    parser.add_argument('--steps', type=int, default=5, help='timed training steps')
    parser.add_argument('--warmup-steps', type=int, default=1)
    parser.add_argument('--num-workers', type=int, default=None,
                        help='override the config\'s train_dataloader.num_workers')
    parser.add_argument('--min-ratio', type=float, default=5.0)
    parser.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from mmpose.registry import DATASETS, MODELS
    from mmunsup3d.utils import register_all_modules
    register_all_modules()
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else \
        f'CPU ({torch.get_num_threads()} threads)'
    print(f'device: {device} [{name}]')

    cfg = Config.fromfile(args.config)
    fixture = _load_fixture_tool()
    with tempfile.TemporaryDirectory() as tmp:
        root = osp.join(tmp, 'h36m')
        fixture.write_fixture(root)
        ds_cfg = cfg.train_dataloader.dataset.copy()
        ds_cfg.data_root = root
        dataset = DATASETS.build(ds_cfg)
    tic = time.perf_counter()
    base = len(dataset)
    dataset.arrays = tile_arrays(dataset.arrays, args.poses)
    print(f'dataset: {type(dataset).__name__}, fixture {base} poses tiled to {len(dataset)} '
          f'in {time.perf_counter() - tic:.2f} s; arrays '
          f'{ {k: tuple(v.shape) for k, v in dataset.arrays.items()} }')

    dl_cfg = cfg.train_dataloader.copy()
    dl_cfg.dataset = dataset
    if args.num_workers is not None:
        dl_cfg.num_workers = args.num_workers
        dl_cfg.persistent_workers = args.num_workers > 0 and dl_cfg.get('persistent_workers')
    loader = Runner.build_dataloader(dl_cfg, seed=0)
    batch_size = loader.batch_size
    print(f'loader: batch {batch_size} per GPU, num_workers {dl_cfg.get("num_workers", 0)}, '
          f'{len(loader)} batches per epoch')

    # ------------------------------------------------------------------ loader
    num_batches = min(args.loader_batches, len(loader) - 1)  # within one epoch
    tic = time.perf_counter()
    it = iter(loader)
    first = next(it)
    first_s = time.perf_counter() - tic
    batches: List[Any] = [first]
    tic = time.perf_counter()
    for _ in range(num_batches):
        batch = next(it)
        if len(batches) < args.steps + args.warmup_steps:
            batches.append(batch)
    loader_s = time.perf_counter() - tic
    del it
    loader_rate = num_batches * batch_size / loader_s
    print(f'loader: first batch {first_s * 1e3:.0f} ms (workers + shuffle of '
          f'{len(dataset)}), then {num_batches} batches in {loader_s:.2f} s = '
          f'{loader_rate:,.0f} poses/s')

    # ------------------------------------------------------------------ training step
    model = MODELS.build(cfg.model).to(device)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)

    def sync() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    for batch in batches[:args.warmup_steps]:
        model.train_step(batch, optim_wrapper)
    sync()
    timed = batches[args.warmup_steps:args.warmup_steps + args.steps]
    tic = time.perf_counter()
    for batch in timed:
        model.train_step(batch, optim_wrapper)
    sync()
    step_s = time.perf_counter() - tic
    step_rate = len(timed) * batch_size / step_s
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f'train step: {len(timed)} steps of {batch_size} in {step_s:.2f} s = '
          f'{step_rate:,.0f} poses/s ({params:.1f} M parameters, {device})')

    ratio = loader_rate / step_rate
    ok = ratio >= args.min_ratio
    print(f'ratio loader/step: {ratio:.1f}x (need >= {args.min_ratio:g}x): '
          f'{"OK" if ok else "FAIL: the loader would starve the step"}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
