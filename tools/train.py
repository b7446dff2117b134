"""Train a model: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]``.

The Runner is :class:`mmunsup3d.engine.Unsup3DRunner` (unless the config names another
``runner_type``): ``load_from`` and ``--resume`` load safely and strictly, so a checkpoint of
another width is an error naming the file, the keys and the options that fit it, not a warning
followed by training from random weights. MMPose's ``Human36mDataset`` in any dataloader is
replaced by ``SafeHuman36mDataset`` (its ``cameras.pkl`` read by the restricted unpickler).
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a mmunsup3d / MMPose model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest one in work-dir if no '
        'path is given')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument('--no-validate', action='store_true', help='skip validation')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. train_cfg.max_epochs=2')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        from mmunsup3d.engine.amp import enable_amp
        enable_amp(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    drop_disabled_hooks(cfg)
    return cfg


# The default hooks MMEngine's Runner itself knows; ``None`` for one of them removes it.
_MMENGINE_DEFAULT_HOOKS = ('runtime_info', 'timer', 'sampler_seed', 'logger', 'param_scheduler',
                           'checkpoint')


def drop_disabled_hooks(cfg: Config) -> None:
    """Let ``default_hooks.<name>=None`` disable our own default hooks too (e.g. rng_state).

    MMEngine accepts ``None`` only for its built-in default hooks and asserts on any other
    key, so ``--cfg-options default_hooks.rng_state=None`` would crash the Runner.
    """
    hooks = cfg.get('default_hooks')
    if not hooks:
        return
    for name in [k for k, v in hooks.items() if v is None and k not in _MMENGINE_DEFAULT_HOOKS]:
        hooks.pop(name)


class ResumeCheckpointError(ValueError):
    """The checkpoint given to ``--resume`` cannot be resumed from."""


# What MMEngine's Runner.resume reads besides the weights; a published (inference) checkpoint
# keeps only ``meta`` and ``state_dict`` (tools/misc/publish_model.py).
_TRAINING_STATE_KEYS = ('message_hub', 'optimizer', 'param_schedulers')


def check_resume_checkpoint(cfg: Config) -> None:
    """Refuse ``resume=True`` from a checkpoint that holds no training state.

    The file is the one MMEngine would resume from: ``cfg.load_from``, or with ``--resume``
    alone the latest checkpoint recorded in ``work_dir`` (none recorded: training starts
    fresh, as in MMEngine). Remote paths (``scheme://``) are left to MMEngine.

    Raises:
        ResumeCheckpointError: the checkpoint is missing, unreadable, not allow-listed, or an
            inference checkpoint (no ``message_hub`` or no epoch/iter in ``meta``).
    """
    if not cfg.get('resume', False):
        return
    path = cfg.get('load_from')
    if path is None:
        from mmengine.runner import find_latest_checkpoint
        path = find_latest_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None
        if path is None:
            return
    path = str(path)
    if '://' in path:
        return
    from mmunsup3d.utils.checkpoint import safe_torch_load
    try:
        ckpt = safe_torch_load(path)
    except (FileNotFoundError, RuntimeError) as e:  # UnsafeCheckpointError is a RuntimeError
        raise ResumeCheckpointError(f'cannot resume from {path}: {e}') from e
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    missing = [k for k in _TRAINING_STATE_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    missing += [f'meta.{k}' for k in ('epoch', 'iter')
                if not isinstance(meta, dict) or k not in meta]
    # Without the message hub or the loop position Runner.resume fails with a bare KeyError;
    # a checkpoint saved with save_optimizer=False lacks only 'optimizer' and still resumes.
    if 'message_hub' in missing or 'meta.epoch' in missing or 'meta.iter' in missing:
        raise ResumeCheckpointError(
            f'cannot resume from {path}: it is an inference checkpoint (no training state: '
            f'missing {", ".join(missing)}), e.g. a published model. To start a new training '
            f'run from its weights, use load_from instead of --resume: '
            f'--cfg-options load_from={path}')


# What a training config must hold (MMEngine's Runner would fail with a bare KeyError).
TRAIN_KEYS = ('model', 'train_dataloader', 'train_cfg', 'optim_wrapper')


def main() -> None:
    args = parse_args()
    import mmunsup3d  # noqa: F401  (registers components, allow-lists checkpoint globals)
    from mmunsup3d.engine.launch import finish_launch, prepare_launch, propagate_data_root
    from mmunsup3d.engine.runner import (ConfigContentError, build_tool_runner,
                                         require_config_keys)
    from mmunsup3d.utils.checkpoint import CheckpointMismatchError
    cfg = merge_args(Config.fromfile(args.config), args)
    try:
        require_config_keys(cfg, TRAIN_KEYS, args.config, 'tools/train.py')
        # Before the Runner exists: it would create the work_dir and its logs, then fail
        # deep inside Runner.resume with KeyError: 'message_hub'.
        check_resume_checkpoint(cfg)
    except (ConfigContentError, ResumeCheckpointError) as e:
        sys.exit(f'tools/train.py: error: {e}')
    propagate_data_root(cfg, args.cfg_options)
    prepare_launch(cfg, args.launcher)
    runner = build_tool_runner(cfg)
    try:
        runner.train()
    except CheckpointMismatchError as e:
        # Raised before the first iteration (load_from / --resume): the message is the point.
        sys.exit(f'tools/train.py: error: CheckpointMismatchError: {e}')
    finish_launch()


if __name__ == '__main__':
    main()
