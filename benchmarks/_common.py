"""What every benchmark script shares: device and bf16 options, timing, the machine's line.

Not a benchmark itself (the leading underscore keeps it out of the smoke test's list).
"""
import argparse
import contextlib
import os
import platform
import statistics
import time
from typing import Callable, ContextManager, Dict, List, Optional

import torch


def add_device_args(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--amp-bf16``, the same in every benchmark."""
    parser.add_argument('--device', default=None,
                        help='cpu, cuda or cuda:N (default: cuda if available, else cpu)')
    parser.add_argument('--amp-bf16', action='store_true',
                        help='bf16 autocast for everything measured (CUDA only)')


def resolve_device(parser: argparse.ArgumentParser, device: Optional[str],
                   amp_bf16: bool) -> torch.device:
    """The device to run on; ``parser.error`` (exit status 2, a clear message) when not usable.

    Args:
        parser: the script's parser, for the error message.
        device: the ``--device`` value, ``None`` for CUDA when available.
        amp_bf16: the ``--amp-bf16`` flag (CUDA only: CPU bf16 speed depends on AVX512-BF16).

    Returns:
        A ``torch.device`` with an explicit index on CUDA.
    """
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if device.split(':')[0] not in ('cpu', 'cuda'):
        parser.error(f'--device must be cpu, cuda or cuda:N, got {device!r}')
    dev = torch.device(device)
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            parser.error(f'--device {device}: CUDA is not available on this machine '
                         f'(torch {torch.__version__}, built with CUDA '
                         f'{torch.version.cuda or "none"})')
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            parser.error(f'--device {device}: only {torch.cuda.device_count()} CUDA device(s)')
        dev = torch.device('cuda', torch.cuda.current_device() if dev.index is None else
                           dev.index)
    if amp_bf16 and dev.type != 'cuda':
        parser.error(f'--amp-bf16 needs a CUDA device, got --device {dev} (MMEngine\'s '
                     'AmpOptimWrapper refuses the CPU; CUDA is '
                     f'{"available" if torch.cuda.is_available() else "not available"})')
    return dev


def make_sync(device: torch.device) -> Callable[[], None]:
    """A function that waits for the device's queued work (a no-op on the CPU).

    Every timed span starts and ends with it: CUDA kernels run asynchronously, so without it a
    timer would measure how fast work is queued.
    """
    if device.type == 'cuda':
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def autocast(device: torch.device, amp_bf16: bool) -> Callable[[], ContextManager]:
    """A factory of bf16 autocast contexts (or of null contexts without ``--amp-bf16``)."""
    if amp_bf16:
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def cpu_model() -> str:
    """The CPU's model name, family and model (``/proc/cpuinfo``), as the README lists them."""
    info: Dict[str, str] = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                info.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    return (f'{info.get("model name", "?")} (family {info.get("cpu family", "?")}, model '
            f'{info.get("model", "?")})')


def describe_machine(device: torch.device, amp_bf16: bool) -> str:
    """One line: versions, CPU, threads, device, bf16 and the current 1-minute load."""
    name = f' [{torch.cuda.get_device_name(device)}]' if device.type == 'cuda' else ''
    try:
        load = f'{os.getloadavg()[0]:.2f}'
    except OSError:
        load = '?'
    return (f'torch {torch.__version__}; {torch.get_num_threads()} CPU thread(s) '
            f'(OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}, '
            f'{os.cpu_count()} cores; 1-min load {load}); CPU {cpu_model()}; device {device}'
            f'{name}; bf16 autocast {"on" if amp_bf16 else "off"}')


def interleaved_medians(fns: Dict[str, Callable[[], object]], iters: int, warmup: int,
                        sync: Callable[[], None]) -> Dict[str, float]:
    """Median seconds per call of each function, their calls interleaved.

    Each round calls every function once, so load from other processes on a shared machine
    hits all of them alike; the median over ``iters`` rounds ignores the rounds it hit.

    Args:
        fns: name -> function to time.
        iters: timed rounds.
        warmup: untimed rounds first (allocations, lazy initialisation, caches).
        sync: see :func:`make_sync`; called before and after each timed call.

    Returns:
        name -> median seconds per call.
    """
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for i in range(warmup + iters):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}
