"""Every script in benchmarks/ runs at HEAD: tiny sizes, thresholds off, figures printed.

A change that breaks a benchmark (a new model component its bare loop does not know, a moved
API...) fails here, not the next time someone measures. Timings are not checked: the scripts
compare against references measured in the same run, and only on a quiet machine.
"""
import glob
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(REPO, 'benchmarks')

# Per script: the smoke run's arguments (a few iterations of narrow networks, every threshold
# disabled) and the figures its output must show.
SMOKE = {
    'train_step_throughput.py': (
        ['--iters', '2', '--warmup', '1', '--width', '32', '--batch-size', '16', '--repeats',
         '1', '--min-ratio', '0', '--max-data-fraction', '1'],
        [r'check: the bare step gives Unsup3DLifter\.train_step\'s losses .* largest relative '
         r'difference', r'repeat 1/1: bare [\d,]+ samples/s .* runner [\d,]+ samples/s',
         r'bare PyTorch: [\d,]+ samples/s; Runner: [\d,]+ samples/s',
         r'bare step: [\d.]+ GFLOP .* GEMM rate', r'data path of the Runner: DataLoader [\d.]+ '
         r'ms \+ data_preprocessor [\d.]+ ms per step', r'Human3\.6M-sized epoch .* min',
         r'ratio runner/bare: [\d.]+', r'temporal_discriminator', r'ChiralityLoss', r'lsgan']),
    'inference_latency.py': (
        ['--iters', '2', '--warmup', '1', '--width', '32', '--batch-sizes', '1,4',
         '--throughput-batch', '64', '--max-latency-factor', 'inf', '--min-gemm-fraction', '0'],
        [r'latency, 1 pose\(s\) per call: bare [\d.]+ ms, lift_keypoints [\d.]+ ms, mmpose '
         r'[\d.]+ ms', r'latency, 4 pose\(s\) per call', r'max \|diff\| 0\.0e\+00 m',
         r'throughput, 64 poses per call: lift_keypoints [\d,]+ poses/s, bare [\d,]+ poses/s; '
         r'GEMM bound [\d,]+ poses/s', r'single pose: lift_keypoints [\d.]+ ms',
         r'batched: lift_keypoints at [\d.]+ of the GEMM bound']),
    'h36m_loader_throughput.py': (
        ['--poses', '2000', '--loader-batches', '3', '--steps', '1', '--width', '32',
         '--batch-size', '16', '--num-workers', '0', '--min-ratio', '0'],
        [r'loader: first batch [\d]+ ms .* = [\d,]+ poses/s', r'train step: 1 steps of 16 .* '
         r'poses/s', r'ratio loader/step: [\d.]+x']),
}


def benchmark_scripts():
    """The benchmark scripts (``_*.py`` are their shared helpers)."""
    return sorted(osp.basename(p) for p in glob.glob(osp.join(BENCH, '*.py'))
                  if not osp.basename(p).startswith('_'))


def run_benchmark(script, args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, osp.join(BENCH, script), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_every_benchmark_has_a_smoke_run():
    assert benchmark_scripts() == sorted(SMOKE), 'give each benchmark a SMOKE entry'


@pytest.mark.parametrize('script', sorted(SMOKE))
def test_benchmark_runs_and_prints_its_figures(script):
    args, figures = SMOKE[script]
    proc = run_benchmark(script, args + ['--device', 'cpu'])
    out = proc.stdout
    assert proc.returncode == 0, f'{script} failed:\n{out[-3000:]}\n{proc.stderr[-5000:]}'
    assert re.search(r'torch [\d.]+.*CPU thread\(s\).*; device cpu', out), out
    for figure in figures:
        assert re.search(figure, out), f'{script} printed no "{figure}":\n{out}'


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the no-CUDA message')
@pytest.mark.parametrize('script', sorted(SMOKE))
@pytest.mark.parametrize('flags, message', [
    (['--device', 'cuda'], 'CUDA is not available on this machine'),
    (['--amp-bf16'], '--amp-bf16 needs a CUDA device'),
])
def test_benchmark_refuses_cuda_options_without_cuda(script, flags, message):
    proc = run_benchmark(script, flags, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
