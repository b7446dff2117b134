"""Distributed training on CPU (torchrun + gloo): launch scripts, data sharding, 2xB vs 1x2B.

The tests marked ``dist`` launch real ``torchrun`` processes on free ports (``pytest -m dist``
selects them, ``-m "not dist"`` skips them). Run as a script, this file is also the worker of
the parity test (``torchrun ... test_distributed.py --parity-worker``).
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Callable, Dict, List, Sequence, Tuple

import pytest

if TYPE_CHECKING:
    import torch

TESTS_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(TESTS_DIR)
CONFIG = osp.join(REPO, 'configs', 'unsup3d',
                  'unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py')
CLIPS = '[walk,run]'
# Tiny networks on two clips (252 training / 42 test samples): a few seconds per run.
TINY_OPTIONS = [
    'model.lifter.width=32', 'model.lifter.num_blocks=1', 'model.discriminator.width=32',
    'model.discriminator.num_blocks=1', f'train_dataloader.dataset.clips={CLIPS}',
    f'val_dataloader.dataset.clips={CLIPS}', f'test_dataloader.dataset.clips={CLIPS}'
]

# Parity: one SGD step of 2 processes x B vs 1 process x 2B. Tolerances (float32 rounding):
# losses: |mean over ranks of loss_2p - loss_1p| <= LOSS_RTOL * |loss_1p|, for every loss;
# weights: per network (lifter, discriminator), with dW = W_after - W_before,
#   max |dW_2p - dW_1p| <= UPDATE_RTOL * max |dW_1p|   (max over all tensors of the network).
# The network-wide scale matters for biases followed by BatchNorm: their exact gradient is 0,
# so both runs only carry rounding noise there. Measured: <= 4e-7 (losses) and 2e-6 / 1e-5
# (updates, without BN / with synchronised BN).
PARITY_BATCH = 32  # per process with 2 processes; 1 process gets 2 * PARITY_BATCH
PARITY_LR = 0.5
LOSS_RTOL = 1e-5
UPDATE_RTOL = 1e-4


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS='1', PYTHON=sys.executable, MASTER_ADDR='127.0.0.1')
    env.update(extra)
    return env


def _check(cmd: Sequence[str], proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f'{cmd} exited with {proc.returncode}:\nSTDOUT\n' \
        f'{proc.stdout[-4000:]}\nSTDERR\n{proc.stderr[-8000:]}'
    assert 'terminate called' not in proc.stderr, proc.stderr[-4000:]
    return proc


def _run(cmd: Sequence[str], env: Dict[str, str],
         timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return _check(cmd, proc)


def _run_dist(build: Callable[[int], Tuple[List[str], Dict[str, str]]],
              attempts: int = 3,
              timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a torchrun command built for a free port; retry if another process took the port."""
    for attempt in range(attempts):
        cmd, env = build(_free_port())
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode == 0 or 'EADDRINUSE' not in proc.stderr or attempt == attempts - 1:
            return _check(cmd, proc)
    raise AssertionError('unreachable')


# ---------------------------------------------------------------------- launch scripts
@pytest.mark.dist
def test_dist_train_shards_data_and_dist_test_reports(tmp_path):
    work = tmp_path / 'work'
    records = tmp_path / 'batches'
    # The CLI cannot express a list of dicts, so a two-line config adds the hook.
    hooked = tmp_path / 'with_batch_record.py'
    hooked.write_text(f'_base_ = [{CONFIG!r}]\n'
                      f'custom_hooks = [dict(type="BatchRecordHook", out_dir={str(records)!r})]\n')
    train_opts = TINY_OPTIONS + [
        'train_dataloader.batch_size=64', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1'
    ]
    _run_dist(lambda port: (['bash', 'tools/dist_train.sh', str(hooked), '2', '--work-dir',
                             str(work), '--cfg-options', *train_opts], _env(PORT=str(port))))
    ckpt = work / 'epoch_2.pth'
    assert ckpt.is_file() and (work / 'epoch_1.pth').is_file()

    from mmengine.config import Config

    from mmpose.registry import DATASETS
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.dataset.clips = ['walk', 'run']
    num_train = len(DATASETS.build(cfg.train_dataloader.dataset))
    ranks = [json.loads((records / f'rank{r}.json').read_text()) for r in range(2)]
    assert [r['world_size'] for r in ranks] == [2, 2]
    for epoch in (0, 1):
        rows = []
        for rec in ranks:
            batches = [b for b in rec['batches'] if b['epoch'] == epoch]
            assert batches, f'rank {rec["rank"]} recorded no batch in epoch {epoch}'
            rows.append({h for b in batches for h in b['rows']})
            assert sum(b['size'] for b in batches) == num_train // 2
        # DefaultSampler: disjoint halves that together cover the (even-sized) training set.
        assert not rows[0] & rows[1]
        assert len(rows[0] | rows[1]) == num_train
    # DistSamplerSeedHook reshuffles every epoch.
    first = [b['sha1'] for b in ranks[0]['batches'] if b['batch_idx'] == 0]
    assert len(first) == 2 and first[0] != first[1]

    test_opts = TINY_OPTIONS
    out2 = tmp_path / 'metrics_2proc.json'
    proc = _run_dist(lambda port: (['bash', 'tools/dist_test.sh', CONFIG, str(ckpt), '2',
                                    '--work-dir', str(tmp_path / 'test2'), '--out', str(out2),
                                    '--cfg-options', *test_opts], _env(PORT=str(port))))
    for name in ('N-MPJPE', 'P-MPJPE', 'MPJPE'):
        assert f'{name} (mm)' in proc.stdout, proc.stdout
    # Distributed evaluation gathers every sample: same numbers as one process.
    out1 = tmp_path / 'metrics_1proc.json'
    _run([sys.executable, 'tools/test.py', CONFIG, str(ckpt), '--work-dir',
          str(tmp_path / 'test1'), '--out', str(out1), '--cfg-options', *test_opts],
         _env(PYTHONPATH=REPO))
    m2, m1 = json.loads(out2.read_text()), json.loads(out1.read_text())
    assert set(m2) == set(m1)
    for key in ('N-MPJPE', 'P-MPJPE', 'MPJPE'):
        assert m2[key] == pytest.approx(m1[key], abs=1e-6), key  # metres


def test_cpu_slurm_launcher_is_refused_with_a_clear_error():
    import torch
    from mmengine.config import Config

    from mmunsup3d.engine.launch import prepare_launch
    if torch.cuda.is_available():
        pytest.skip('the CPU-only path is only taken without CUDA')
    cfg = Config(dict(model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel')))
    for launcher in ('slurm', 'mpi'):
        with pytest.raises(RuntimeError, match=f'{launcher}.*not supported without CUDA'):
            prepare_launch(cfg, launcher)


# ---------------------------------------------------------------------- parity: 2xB vs 1x2B
def _launch_parity(out_dir: str, nproc: int, batch_size: int, variants: List[str]) -> None:
    def build(port: int) -> Tuple[List[str], Dict[str, str]]:
        # out_dir holds the parts module the workers' configs import (custom_imports).
        return [
            sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
            '--nnodes=1', '--master_addr=127.0.0.1', f'--master_port={port}',
            osp.abspath(__file__), '--parity-worker', '--out-dir', out_dir, '--batch-size',
            str(batch_size), '--variants', *variants
        ], _env(PYTHONPATH=os.pathsep.join([REPO, out_dir]))

    _run_dist(build)


@pytest.mark.dist
def test_two_processes_match_one_process_with_double_batch(tmp_path):
    """One step of 2 processes x B equals one step of 1 process x 2B.

    Same samples (DefaultSampler shards the first 2B samples of the same permutation),
    dropout and flips off, each sample's virtual camera a function of the sample itself
    (``SampleTiedCameraSampler``, registered in ``TASK_UTILS`` by a module the workers'
    configs import and selected with ``model.camera_sampler``), and plain SGD (Adam's first
    step, ``lr * g / (|g| + eps)``, would hide gradient-scale errors such as a sum instead of
    a mean over processes). BatchNorm: ``nobn`` (lifter without BN) and ``syncbn`` (statistics
    synchronised over the processes) must match; ``bn`` (each process normalises its own
    half-batch, what plain DDP does) must not, which also shows that the test is sensitive.
    """
    import torch
    out = str(tmp_path)
    (tmp_path / f'{PARTS_MODULE}.py').write_text(PARITY_PARTS)
    _launch_parity(out, 1, 2 * PARITY_BATCH, ['nobn', 'bn'])
    _launch_parity(out, 2, PARITY_BATCH, ['nobn', 'syncbn', 'bn'])

    def load(variant: str, nproc: int, rank: int) -> dict:
        return torch.load(osp.join(out, f'{variant}_np{nproc}_rank{rank}.pt'), weights_only=True)

    report = {}
    for variant, ref_variant in (('nobn', 'nobn'), ('syncbn', 'bn'), ('bn', 'bn')):
        ref = load(ref_variant, 1, 0)
        ranks = [load(variant, 2, r) for r in range(2)]
        # The configs' parts were the ones built (not silently the default random cameras).
        for run in [ref] + ranks:
            assert run['parts'] == dict(camera_sampler='SampleTiedCameraSampler',
                                        lifter=PARITY_LIFTERS[run['variant']]), run['parts']
        # Same initial weights, the same 2B samples, identical weights on both ranks after.
        for key, value in ref['init'].items():
            assert torch.equal(ranks[0]['init'][key], value), key
        assert sorted(ranks[0]['rows'] + ranks[1]['rows']) == sorted(ref['rows'])
        assert not set(ranks[0]['rows']) & set(ranks[1]['rows'])
        for key, value in ranks[0]['final'].items():
            if 'running' not in key and 'num_batches' not in key:
                assert torch.equal(ranks[1]['final'][key], value), key
        loss_err = {}
        for key, value in ref['losses'].items():
            mean = sum(r['losses'][key] for r in ranks) / 2
            loss_err[key] = abs(mean - value) / max(abs(value), 1e-12)
        update_err = {}
        for net in ('lifter', 'discriminator'):
            keys = [
                k for k in ref['init'] if k.startswith(f'{net}.') and 'num_batches' not in k
                # per-process BN statistics are only synchronised by the syncbn variant
                and (variant == 'syncbn' or 'running' not in k)
            ]
            d_ref = {k: ref['final'][k].double() - ref['init'][k].double() for k in keys}
            d_two = {k: ranks[0]['final'][k].double() - ref['init'][k].double() for k in keys}
            scale = max(float(d_ref[k].abs().max()) for k in keys)
            update_err[net] = max(float((d_two[k] - d_ref[k]).abs().max()) for k in keys) / scale
        report[variant] = dict(loss=max(loss_err.values()), update=max(update_err.values()),
                               losses=loss_err, updates=update_err)

    print('\nparity (max relative differences):',
          {v: (f"loss {r['loss']:.1e}", f"update {r['update']:.1e}") for v, r in report.items()})
    for variant in ('nobn', 'syncbn'):
        assert report[variant]['loss'] <= LOSS_RTOL, (variant, report[variant]['losses'])
        assert report[variant]['update'] <= UPDATE_RTOL, (variant, report[variant]['updates'])
    # Plain BN under DDP: half-batch statistics change losses and updates far beyond that.
    assert report['bn']['loss'] > 100 * LOSS_RTOL, report['bn']['losses']
    assert report['bn']['update'] > 100 * UPDATE_RTOL, report['bn']['updates']


# ---------------------------------------------------------------------- the parity worker
# The parts the parity runs swap in, as a user would add them: a module (written by the test
# into the output folder, which is on the workers' PYTHONPATH) that registers them, imported
# through the config's custom_imports.
PARTS_MODULE = 'unsup3d_parity_parts'
# Lifter per variant: 'syncbn' synchronises BatchNorm statistics over the processes.
PARITY_LIFTERS = dict(nobn='ResidualLifter', bn='ResidualLifter',
                      syncbn='GlooSyncBNResidualLifter')
PARITY_PARTS = '''\
"""Parts of the distributed parity test: sample-tied cameras and gloo-synchronised BN."""
import math
from typing import Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.nn.functional import all_reduce

from mmpose.registry import MODELS, TASK_UTILS
from mmunsup3d.models.lifters import ResidualLifter
from mmunsup3d.models.task_modules import RandomOrbitCameraSampler
from mmunsup3d.structures.geometry import euler_to_rotmat


@TASK_UTILS.register_module()
class SampleTiedCameraSampler(RandomOrbitCameraSampler):
    """Each sample's virtual camera as a fixed pseudo-random function of its own 2D pose.

    A sample gets the same camera in any batch layout (2 processes x B or 1 x 2B), which
    random draws cannot give. A smooth function (not a hash) so that last-bit differences in
    ``x`` between batch layouts cannot change a rotation by more than rounding. Angle ranges
    as :class:`RandomOrbitCameraSampler`; no random number is drawn.
    """

    def __call__(self, x: Tensor, elevation: Optional[Tensor] = None,
                 elevation_bounds: Optional[Tuple[float, float]] = None) -> Tensor:
        """``(B, J, 2)`` normalised poses -> ``(B, 3, 3)`` rotations."""
        gen = torch.Generator().manual_seed(20240611)
        proj = torch.randn(x.shape[-2] * x.shape[-1], 3, generator=gen, dtype=torch.float64)
        u = torch.sin(50.0 * x.detach().double().flatten(1) @ proj)  # (B, 3) in [-1, 1]
        roll = self.max_elevation_deg / 2.0 if self.max_roll_deg is None else self.max_roll_deg
        bounds = torch.tensor([self.max_azimuth_deg, self.max_elevation_deg, roll],
                              dtype=torch.float64) * (math.pi / 180.0)
        angles = (u * bounds).to(x.dtype)
        return euler_to_rotmat(angles[:, 0], angles[:, 1], angles[:, 2])


class GlooSyncBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d with batch statistics over all processes, for CPU/gloo tests.

    ``torch.nn.SyncBatchNorm`` needs an accelerator: its module refuses CPU inputs and
    ``aten::batch_norm_stats`` & co. have no CPU kernels (torch 2.14). This reference
    computes the global mean and biased variance in float64 from all-reduced sums; the
    autograd-aware ``all_reduce`` sums the gradients of all processes' losses in backward,
    as SyncBatchNorm does.
    """

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C)`` -> ``(B, C)``, normalised with the statistics of every process."""
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        xd = x.double()
        count = torch.full((1, ), float(x.shape[0]), dtype=torch.float64)
        stats = all_reduce(torch.cat([xd.sum(0), (xd * xd).sum(0), count]))
        c, n = x.shape[1], stats[-1]
        mean = stats[:c] / n
        var = stats[c:2 * c] / n - mean * mean
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean.float())
            self.running_var.mul_(1 - m).add_(m * (var * n / (n - 1)).float())
            self.num_batches_tracked.add_(1)
        y = (xd - mean) / torch.sqrt(var + self.eps)
        return (y * self.weight.double() + self.bias.double()).to(x.dtype)


def _to_gloo_sync_bn(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm1d):
            new = GlooSyncBatchNorm1d(child.num_features, child.eps, child.momentum)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            _to_gloo_sync_bn(child)


@MODELS.register_module()
class GlooSyncBNResidualLifter(ResidualLifter):
    """``ResidualLifter`` whose BatchNorm layers are :class:`GlooSyncBatchNorm1d`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        _to_gloo_sync_bn(self)
'''


def _row_hashes(keypoints: 'torch.Tensor') -> List[str]:
    arr = keypoints.detach().cpu().contiguous().numpy()
    return [hashlib.sha1(row.tobytes()).hexdigest() for row in arr]


def _parity_worker(out_dir: str, batch_size: int, variants: List[str]) -> None:
    sys.path[:0] = [REPO, TESTS_DIR]
    import torch
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper
    from mmengine.runner import Runner

    from helpers import tiny_cfg
    from mmunsup3d.engine.launch import finish_launch, prepare_launch
    from mmunsup3d.utils import register_all_modules
    register_all_modules(init_default_scope=True)

    class Probe(Hook):
        """Save initial weights, then losses, batch rows and weights after the first step."""

        def __init__(self, path: str, variant: str) -> None:
            self.path, self.variant = path, variant
            self.init: Dict[str, torch.Tensor] = {}

        @staticmethod
        def _model(runner) -> torch.nn.Module:
            return runner.model.module if is_model_wrapper(runner.model) else runner.model

        def _state(self, runner) -> Dict[str, torch.Tensor]:
            return {k: v.detach().clone() for k, v in self._model(runner).state_dict().items()}

        def before_train(self, runner) -> None:
            self.init = self._state(runner)

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            model = self._model(runner)
            # MMSeparateDistributedDataParallel wraps each network on its own.
            lifter = model.lifter.module if is_model_wrapper(model.lifter) else model.lifter
            parts = dict(camera_sampler=type(model.camera_sampler).__name__,
                         lifter=type(lifter).__name__)
            torch.save(
                dict(init=self.init, final=self._state(runner), variant=self.variant,
                     parts=parts, losses={k: float(v) for k, v in outputs.items()},
                     rows=_row_hashes(data_batch['inputs']['keypoints_2d'])), self.path)

    world = int(os.environ['WORLD_SIZE'])
    rank = int(os.environ['RANK'])
    for variant in variants:
        cfg = tiny_cfg(osp.join(out_dir, f'work_{variant}_np{world}'))
        # The shipped model with swapped parts, as a user's config would swap them: the
        # parts module (written by the test, on PYTHONPATH) is imported by custom_imports.
        cfg.custom_imports = dict(imports=['mmunsup3d', PARTS_MODULE], allow_failed_imports=False)
        cfg.model.camera_sampler.type = 'SampleTiedCameraSampler'  # shipped angle ranges
        cfg.model.lifter.type = PARITY_LIFTERS[variant]
        cfg.model.lifter.use_bn = variant != 'nobn'
        cfg.model.lifter.dropout = 0.0
        cfg.model.flip = None
        cfg.train_dataloader.batch_size = batch_size
        cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=True, seed=123)
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1)
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
        cfg.param_scheduler = None
        for name in ('lifter', 'discriminator'):
            cfg.optim_wrapper[name].optimizer = dict(type='SGD', lr=PARITY_LR)
        cfg.default_hooks.checkpoint = None
        # Dumped and parsed again as tools/train.py parses a config: parsing runs the imports.
        cfg_file = osp.join(out_dir, f'parity_{variant}_np{world}_rank{rank}.py')
        cfg.dump(cfg_file)
        cfg = Config.fromfile(cfg_file)
        prepare_launch(cfg, 'pytorch')
        runner = Runner.from_cfg(cfg)
        runner.register_hook(
            Probe(osp.join(out_dir, f'{variant}_np{world}_rank{rank}.pt'), variant),
            priority='LOWEST')
        runner.train()
        del runner
    finish_launch()


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--parity-worker', action='store_true', required=True)
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--batch-size', type=int, required=True)
    parser.add_argument('--variants', nargs='+', required=True)
    args = parser.parse_args()
    _parity_worker(args.out_dir, args.batch_size, args.variants)
