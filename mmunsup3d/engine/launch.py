"""Make MMEngine's distributed launch work on CPU-only machines without editing configs."""
import os

import torch
import torch.distributed as dist
from mmengine.config import Config

__all__ = ['prepare_launch', 'finish_launch']


def prepare_launch(cfg: Config, launcher: str) -> None:
    """Adapt ``cfg`` (in place) to the launcher and the available devices.

    On GPUs nothing changes: MMEngine initialises NCCL from ``env_cfg.dist_cfg``. Without
    CUDA, MMEngine 0.10.7's ``pytorch`` launcher calls ``torch.cuda.set_device`` and fails, so we
    initialise a gloo process group from torchrun's environment ourselves (the Runner then
    skips its own ``init_dist``), and drop the ``device_ids=[LOCAL_RANK]`` that the Runner
    would pass to DDP, which CPU modules reject.

    Args:
        cfg: the loaded config; ``cfg.launcher`` is set to ``launcher``.
        launcher: ``none``, ``pytorch``, ``slurm`` or ``mpi``.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if launcher != 'pytorch':
        raise RuntimeError(f'CPU-only distributed training supports the "pytorch" (torchrun) '
                           f'launcher, got "{launcher}"')
    if not dist.is_initialized():
        for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
            if var not in os.environ:
                raise RuntimeError(f'--launcher pytorch needs ${var} (start with torchrun or '
                                   'tools/dist_train.sh)')
        dist.init_process_group(backend='gloo')


def finish_launch() -> None:
    """Tear down a process group in step, so no rank exits while another still talks to it."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
