"""Record (or check) golden outputs that a refactor of the training step must reproduce exactly.

For every shipped training config (lifter and discriminators shrunk to width 32, one block; a
slice of the data) a few seeded ``train_step`` calls on CPU with one thread: the ``log_vars`` of
each step (exact float32 values) and a sha256 of the state dict afterwards. For every committed
zoo checkpoint, the sha256 of ``predict_3d`` on fixed test poses. Stored in
``tests/data/golden_train_steps.json``; ``tests/test_models/test_golden_record.py`` compares.

Usage::

    OMP_NUM_THREADS=1 python tools/misc/record_golden.py            # print, compare to file
    OMP_NUM_THREADS=1 python tools/misc/record_golden.py --write    # (re)write the file
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp
import sys
import tempfile
from typing import Any, Dict, List

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

GOLDEN = osp.join(REPO, 'tests', 'data', 'golden_train_steps.json')
NUM_STEPS = 3
BATCH = 32


def state_hash(state: Dict[str, torch.Tensor]) -> str:
    """sha256 over the sorted keys, dtypes, shapes and bytes of a state dict."""
    digest = hashlib.sha256()
    for key in sorted(state):
        value = state[key].detach().cpu().contiguous()
        digest.update(f'{key}|{value.dtype}|{tuple(value.shape)}|'.encode())
        digest.update(value.numpy().tobytes() if value.dtype != torch.bfloat16 else
                      value.float().numpy().tobytes())
    return digest.hexdigest()


def training_configs() -> List[str]:
    """Every shipped config with a training part that builds an ``Unsup3DLifter``."""
    paths = sorted(glob.glob(osp.join(REPO, 'configs', 'unsup3d', '*.py')))
    paths.append(osp.join(REPO, 'configs', 'unsup3d_h36m.py'))
    return [p for p in paths if 'flatdepth' not in osp.basename(p)]


def _shrink(cfg, data_root: str):
    from mmunsup3d.engine.launch import propagate_data_root
    cfg.model.lifter.width = 32
    cfg.model.lifter.num_blocks = 1
    for name in ('discriminator', 'temporal_discriminator'):
        if cfg.model.get(name):
            cfg.model[name].width = 32
            cfg.model[name].num_blocks = 1
    for name in ('elevation_net', 'adapter'):
        if cfg.model.get(name):
            cfg.model[name].width = 16
    cfg.train_dataloader.batch_size = BATCH
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    if 'h36m' in osp.basename(cfg.filename):
        propagate_data_root(cfg, dict(data_root=data_root))
    return cfg


def record_config(path: str, data_root: str) -> Dict[str, Any]:
    """``log_vars`` of ``NUM_STEPS`` seeded train steps and the final state-dict hash."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner
    from mmpose.registry import MODELS
    cfg = _shrink(Config.fromfile(path), data_root)
    torch.manual_seed(0)
    np.random.seed(0)
    model = MODELS.build(cfg.model)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=True, seed=0)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    torch.manual_seed(1)
    steps = []
    it = iter(loader)
    model.train()
    for _ in range(NUM_STEPS):
        log_vars = model.train_step(next(it), optim)
        steps.append({k: float(v) for k, v in sorted(log_vars.items())})
    return dict(steps=steps, state_sha256=state_hash(model.state_dict()))


def record_zoo() -> Dict[str, Any]:
    """sha256 (and a few values) of ``predict_3d`` of each zoo checkpoint on fixed poses."""
    from mmunsup3d.apis import init_lifter
    from mmunsup3d.utils.zoo import list_models, resolve_model
    from mmunsup3d.datasets import MocapProjectionDataset
    test = MocapProjectionDataset(split='test').arrays
    idx = np.linspace(0, len(test['keypoints_2d']) - 1, 64).astype(int)
    kpts = torch.from_numpy(test['keypoints_2d'][idx])
    scores = torch.from_numpy(np.linspace(0.2, 1.0, 64 * 17, dtype=np.float32).reshape(64, 17))
    out = {}
    for name in list_models():
        info = resolve_model(name)
        weights = info['local']
        model = init_lifter(info['config'], weights)
        with torch.no_grad():
            pred = model.predict_3d(kpts, scores if model.use_scores else None)
        arr = pred.float().numpy()
        out[name] = dict(sha256=hashlib.sha256(arr.tobytes()).hexdigest(),
                         first=[float(v) for v in arr[0, :3].ravel()])
    return out


def record() -> Dict[str, Any]:
    """The whole golden document."""
    import mmunsup3d  # noqa: F401  (registers components)
    from mmunsup3d.utils import register_all_modules
    register_all_modules()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        fixture = load_fixture_tool()
        fixture.write_fixture(osp.join(tmp, 'h36m'))
        configs = {osp.relpath(p, REPO): record_config(p, osp.join(tmp, 'h36m'))
                   for p in training_configs()}
    return dict(num_steps=NUM_STEPS, batch_size=BATCH, torch=torch.__version__,
                configs=configs, zoo=record_zoo())


def load_fixture_tool():
    import importlib.util
    path = osp.join(REPO, 'tools', 'dataset_converters', 'make_h36m_fixture.py')
    spec = importlib.util.spec_from_file_location('make_h36m_fixture', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--write', action='store_true', help=f'write {GOLDEN}')
    args = parser.parse_args()
    if os.environ.get('OMP_NUM_THREADS') != '1':
        print('record_golden: set OMP_NUM_THREADS=1 (golden values depend on the thread count)',
              file=sys.stderr)
        return 2
    doc = record()
    text = json.dumps(doc, indent=1, sort_keys=True) + '\n'
    if args.write:
        os.makedirs(osp.dirname(GOLDEN), exist_ok=True)
        tmp = GOLDEN + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, GOLDEN)
        print(f'wrote {GOLDEN}')
        return 0
    if not osp.isfile(GOLDEN):
        print(text)
        return 0
    with open(GOLDEN, encoding='utf-8') as f:
        same = json.load(f) == json.loads(text)
    print('golden record reproduced' if same else 'golden record DIFFERS')
    return 0 if same else 1


if __name__ == '__main__':
    sys.exit(main())
