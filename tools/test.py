"""Evaluate a model: ``python tools/test.py CONFIG CHECKPOINT`` (prints mm tables).

``CHECKPOINT`` is a file, a zoo name (``mmunsup3d.utils.zoo.list_models()``, e.g.
``unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap``) or an ``http(s)://`` / ``file://`` URL;
names and URLs are downloaded (or taken from the cache) and sha256-verified first, as
``mmunsup3d.apis.init_lifter`` does. ``none`` is for parameter-free baselines (e.g. the
flat-depth config). A zoo model on Human3.6M-format data, in one command::

    python tools/test.py configs/unsup3d/zoo_h36m/<zoo name>_h36m.py <zoo name> \
        --cfg-options data_root=data/h36m/

The checkpoint is loaded here, not by MMEngine (whose ``load_from`` is non-strict and only
warns): safely (``weights_only=True`` with the allow-list, whatever
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says) and strictly for the submodules the test forward
pass uses (``Unsup3DLifter``: the lifter; other models: every key). A missing, unexpected or
mis-shaped key is an error naming the keys and shapes; the discriminators of a training
checkpoint are ignored, and a lifter-only (published) checkpoint loads without a warning.

The Runner is :class:`mmunsup3d.engine.Unsup3DRunner` (unless the config names another
``runner_type``), and MMPose's ``Human36mDataset`` in any dataloader is replaced by
``SafeHuman36mDataset``: with MMPose's own Human3.6M configs too, ``cameras.pkl`` is read by
the restricted unpickler. A config without ``model`` or the test dataloader, loop and evaluator
is an error naming the config and what it lacks.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.dist import get_rank


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a lifter')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint',
                        help='checkpoint file, zoo name, http(s)/file URL, or "none"')
    parser.add_argument('--work-dir', help='the dir to save evaluation results')
    parser.add_argument('--out', help='write the metrics (metres) to this JSON file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def resolve_checkpoint(value: str) -> Optional[str]:
    """The local checkpoint file ``value`` names (``None`` for ``"none"``).

    An existing path is used as it is; an ``http(s)://`` / ``file://`` URL or a zoo name is
    resolved by :func:`mmunsup3d.utils.zoo.download_checkpoint` (cached, sha256-verified); zoo
    aliases (``unsup3d``) work too.
    Loading stays safe either way: the file is unpickled by ``safe_torch_load`` afterwards.

    Raises:
        FileNotFoundError: neither a file, nor a URL, nor a zoo name (the message lists the
            zoo names).
        DownloadError, KeyError, ValueError: see ``download_checkpoint``.
    """
    if value.lower() == 'none':
        return None
    if osp.exists(value):
        return value
    from mmunsup3d.utils.zoo import download_checkpoint, list_models, resolve_model
    if '://' in value:
        return download_checkpoint(value)
    try:
        resolve_model(value)  # a zoo name or alias
    except KeyError:
        raise FileNotFoundError(f'Checkpoint not found: {value} is not a file, not an '
                                f'http(s):// or file:// URL and not a zoo name or alias (zoo '
                                f'names: {", ".join(list_models())})') from None
    return download_checkpoint(value)


# What a test config must hold (MMEngine's Runner would fail with a bare KeyError: 'model').
TEST_KEYS = ('model', 'test_dataloader', 'test_cfg', 'test_evaluator')


def load_test_config(args: argparse.Namespace) -> Config:
    """The config with ``--cfg-options`` and ``--work-dir`` applied, checked for a test run.

    Exits with a message naming the config and what it lacks (no ``model``, no test loop).
    """
    from mmunsup3d.engine.launch import propagate_data_root
    from mmunsup3d.engine.runner import ConfigContentError, require_config_keys
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
        propagate_data_root(cfg, args.cfg_options)
    try:
        require_config_keys(cfg, TEST_KEYS, args.config, 'tools/test.py')
    except ConfigContentError as e:
        sys.exit(f'tools/test.py: error: {e}')
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    # Loaded by main(), strictly. With ``resume`` (and no load_from) runner.test() would
    # instead pick up the latest checkpoint of work_dir.
    cfg.load_from = None
    cfg.resume = False
    # Evaluation needs neither the training data nor the discriminator's optimizer.
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return cfg


def report(metrics: dict, out: Optional[str]) -> None:
    """Print the mm tables (rank 0) and write ``out`` (metres) if given."""
    from mmunsup3d.evaluation import format_chirality_rate, format_mpjpe_results
    if get_rank() != 0:
        return
    print(format_mpjpe_results(metrics), flush=True)
    chirality = format_chirality_rate(metrics)  # '' for configs without ChiralityRate
    if chirality:
        print(chirality, flush=True)
    if out:
        with open(out, 'w', encoding='utf-8') as f:
            json.dump(metrics, f, indent=2, default=float)  # metrics are NumPy floats


def run_test(runner, checkpoint: Optional[str]) -> dict:
    """``runner.test()``; a metric that fails on non-finite predictions exits naming why.

    Finite but huge weights (e.g. 1e30) overflow the network, and MMPose's Procrustes
    alignment then stops in ``LinAlgError: SVD did not converge``.
    """
    import numpy as np
    try:
        return runner.test()
    except np.linalg.LinAlgError as e:
        largest = max((float(v.abs().max()) for v in runner.model.state_dict().values()
                       if v.is_floating_point() and v.numel()), default=0.0)
        sys.exit(f'tools/test.py: error: the metric failed ({e}) because the predictions are '
                 f'not finite: the weights of {checkpoint} overflow the network (largest '
                 f'|weight| {largest:.3g}); the checkpoint is probably corrupt')


def main() -> None:
    args = parse_args()
    import mmunsup3d  # noqa: F401
    from mmunsup3d.engine.launch import finish_launch, prepare_launch
    from mmunsup3d.engine.runner import build_tool_runner
    from mmunsup3d.utils.checkpoint import (checkpoint_state_dict, inference_prefixes,
                                            load_state_dict_strict, safe_torch_load)
    cfg = load_test_config(args)
    checkpoint = resolve_checkpoint(args.checkpoint)
    # Unpickled (safely) before the Runner exists: an unsafe or corrupt file is refused before
    # anything is set up or written to work_dir.
    ckpt = safe_torch_load(checkpoint, map_location='cpu') if checkpoint is not None else None
    prepare_launch(cfg, args.launcher)
    runner = build_tool_runner(cfg)
    if ckpt is not None:
        load_state_dict_strict(runner.model, checkpoint_state_dict(ckpt, checkpoint),
                               inference_prefixes(runner.model), source=checkpoint)
        runner.logger.info(f'Load checkpoint from {checkpoint}')
    report(run_test(runner, checkpoint), args.out)
    finish_launch()


if __name__ == '__main__':
    main()
