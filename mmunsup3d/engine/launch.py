"""Make MMEngine's distributed launch work on CPU-only machines without editing configs.

``prepare_launch`` adapts a config to the launcher and the devices before the ``Runner`` is
built; ``finish_launch`` ends a distributed run cleanly. See ``docs/distributed.md``.
"""
import logging
import os
import sys
import time
import warnings
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as dist
from mmengine.config import Config

__all__ = ['prepare_launch', 'finish_launch', 'wait_for_idle_gloo_workers']

# Name torch gives ProcessGroupGloo's worker threads (c10::setThreadName, max. 15 chars).
_GLOO_WORKER_THREAD = 'pt_gloo_runloop'


def prepare_launch(cfg: Config, launcher: str) -> None:
    """Adapt ``cfg`` (in place) to the launcher and the available devices.

    On GPUs nothing changes: MMEngine initialises NCCL from ``env_cfg.dist_cfg``. Without
    CUDA, MMEngine 0.10.7's ``pytorch`` launcher calls ``torch.cuda.set_device`` and fails, so we
    initialise a gloo process group from torchrun's environment ourselves (the Runner then
    skips its own ``init_dist``), and drop the ``device_ids=[LOCAL_RANK]`` that the Runner
    would pass to DDP, which CPU modules reject. ``cfg.sync_bn`` is dropped with a warning on
    CPU: ``torch.nn.SyncBatchNorm`` refuses CPU tensors (each process then normalises with
    its own batch statistics, as plain DDP does).

    Args:
        cfg: the loaded config; ``cfg.launcher`` is set to ``launcher``.
        launcher: ``none``, ``pytorch``, ``slurm`` or ``mpi``.

    Raises:
        RuntimeError: for a ``slurm`` or ``mpi`` launch without CUDA (MMEngine's launchers for
            them need GPUs), or a ``pytorch`` launch without torchrun's environment.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} is not supported without CUDA: MMEngine 0.10.7\'s '
            f'"{launcher}" launcher calls torch.cuda.set_device() and initialises NCCL. On '
            'CPU-only machines use the "pytorch" launcher (torchrun): tools/dist_train.sh / '
            'tools/dist_test.sh, started on every node with NNODES, NODE_RANK, MASTER_ADDR and '
            'PORT set (e.g. from an sbatch script); use tools/slurm_train.sh on GPU nodes.')
    missing = [v for v in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if v not in os.environ]
    if missing and not dist.is_initialized():
        raise RuntimeError(f'--launcher pytorch needs ${missing[0]} (start with torchrun or '
                           'tools/dist_train.sh)')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if cfg.get('sync_bn', None) is not None:
        warnings.warn(
            f'cfg.sync_bn={cfg.sync_bn!r} ignored: torch.nn.SyncBatchNorm only runs on '
            'accelerators, so on CPU (gloo) every process normalises with its own batch '
            'statistics (see docs/distributed.md)', stacklevel=2)
        cfg.sync_bn = None
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')


def _flush_logs() -> None:
    """Flush stdout/stderr and every ``logging`` handler (MMEngine's log files included)."""
    from mmengine.logging import MMLogger
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    # MMLoggers are not registered with logging's manager; MMEngine keeps them by name.
    loggers += list(getattr(MMLogger, '_instance_dict', {}).values())
    for logger in loggers:
        for handler in logger.handlers:
            try:
                handler.flush()
            except Exception:  # a closed stream must not stop the shutdown
                pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _gloo_worker_stats() -> Optional[Dict[str, Tuple[str, int]]]:
    """``{tid: (state, context switches)}`` of this process's gloo worker threads.

    Returns:
        ``None`` where ``/proc`` is unavailable (not Linux).
    """
    try:
        tids = os.listdir('/proc/self/task')
    except OSError:
        return None
    stats: Dict[str, Tuple[str, int]] = {}
    for tid in tids:
        try:
            with open(f'/proc/self/task/{tid}/stat', encoding='utf-8') as f:
                stat = f.read()
            if stat[stat.index('(') + 1:stat.rindex(')')] != _GLOO_WORKER_THREAD:
                continue
            switches = 0
            with open(f'/proc/self/task/{tid}/status', encoding='utf-8') as f:
                for line in f:
                    if line.startswith(('voluntary_ctxt', 'nonvoluntary_ctxt')):
                        switches += int(line.split()[1])
        except (OSError, ValueError):
            continue  # the thread exited meanwhile
        stats[tid] = (stat[stat.rindex(')') + 2], switches)
    return stats


def wait_for_idle_gloo_workers(timeout: float = 30.0,
                               interval: float = 0.02,
                               quiet_polls: int = 3) -> bool:
    """Wait until ProcessGroupGloo's worker threads have finished all their work.

    torch never joins these threads (in torch 2.14 they keep running after
    ``destroy_process_group()``, the backend's ``shutdown()``/``abort()`` and the deletion of
    every DDP wrapper), and a worker drops its reference to a finished work item only after the
    caller has been told that the work is complete. A final ``barrier()`` also keeps weak
    references to the works that were in flight when it was issued, e.g. DDP's last gradient
    all-reduce.
    When that reference is the last one, the work's destructor runs on the worker thread and
    releases the Python objects the work captured (tensors, and the ``contextvars`` context
    that ``torch.autograd.backward`` stashes in thread-local state, which DDP's gradient
    all-reduce captures). If the interpreter is already finalizing, taking the GIL for that
    ``Py_DECREF`` makes CPython end the thread with ``pthread_exit``, whose unwinding through
    the ``noexcept`` destructor calls ``std::terminate``: "terminate called without an active
    exception", SIGABRT at exit. We therefore wait, while *not* holding the GIL, until every
    worker is asleep and has made no context switch for ``quiet_polls`` polls (a worker
    blocked on the GIL or a mutex would be woken and switch while we sleep).

    Args:
        timeout: give up after this many seconds.
        interval: seconds between polls (``time.sleep`` releases the GIL meanwhile).
        quiet_polls: consecutive quiet polls required.

    Returns:
        ``True`` once the workers are idle (or there is nothing to check), ``False`` on timeout.
    """
    deadline = time.monotonic() + timeout
    previous: Optional[Dict[str, Tuple[str, int]]] = None
    quiet = 0
    while True:
        stats = _gloo_worker_stats()
        if not stats:  # not Linux, or no gloo process group in this process
            return True
        if previous == stats and all(state == 'S' for state, _ in stats.values()):
            quiet += 1
            if quiet >= quiet_polls:
                return True
        else:
            quiet = 0
        previous = stats
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def finish_launch(drain_timeout: float = 30.0) -> None:
    """End a distributed run: flush logs, synchronise, destroy the group, drain gloo workers.

    Call it last, after checkpoints and results are written. The barrier keeps every rank
    alive until all have finished (no rank exits while another still talks to it); draining
    the gloo worker threads prevents the intermittent SIGABRT at interpreter exit described in
    :func:`wait_for_idle_gloo_workers`.

    Args:
        drain_timeout: seconds to wait for gloo's worker threads to go idle.
    """
    _flush_logs()
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
    if not wait_for_idle_gloo_workers(drain_timeout):
        warnings.warn(f'gloo worker threads still busy after {drain_timeout:.0f} s; the process '
                      'may abort at exit', RuntimeWarning, stacklevel=2)
    _flush_logs()


def propagate_data_root(cfg: Config, cfg_options: Optional[dict]) -> None:
    """Apply a ``--cfg-options data_root=DIR`` override to every dataloader's dataset.

    MMEngine substitutes top-level config variables while parsing the file, so overriding
    ``data_root`` afterwards would not reach the datasets. OpenMMLab users expect it to, so
    the command-line value is copied into ``{train,val,test}_dataloader.dataset.data_root``
    (and into wrapped ``dataset.dataset`` configs).
    """
    if not cfg_options or 'data_root' not in cfg_options:
        return
    root = cfg_options['data_root']
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        dataset = loader.get('dataset') if loader else None
        while dataset is not None:
            # Wrappers (a ``dataset`` inside) take no data_root themselves.
            if 'data_root' in dataset or ('type' in dataset and 'dataset' not in dataset):
                dataset['data_root'] = root
            dataset = dataset.get('dataset')
