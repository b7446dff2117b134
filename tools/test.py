"""Evaluate a model: ``python tools/test.py CONFIG CHECKPOINT`` (prints mm tables).

``CHECKPOINT`` may be ``none`` for parameter-free baselines (e.g. the flat-depth config).
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.dist import get_rank
from mmengine.runner import Runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a lifter')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file, or "none"')
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


def main() -> None:
    args = parse_args()
    import mmunsup3d  # noqa: F401
    from mmunsup3d.engine.launch import finish_launch, prepare_launch, propagate_data_root
    from mmunsup3d.evaluation import format_mpjpe_results
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
        propagate_data_root(cfg, args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.checkpoint.lower() == 'none':
        cfg.load_from = None
    else:
        if not osp.isfile(args.checkpoint):
            raise FileNotFoundError(f'Checkpoint not found: {args.checkpoint}')
        cfg.load_from = args.checkpoint
    # Evaluation needs neither the training data nor the discriminator's optimizer.
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    prepare_launch(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if get_rank() == 0:
        print(format_mpjpe_results(metrics), flush=True)
        if args.out:
            with open(args.out, 'w', encoding='utf-8') as f:
                json.dump(metrics, f, indent=2, default=float)  # metrics are NumPy floats
    finish_launch()


if __name__ == '__main__':
    main()
