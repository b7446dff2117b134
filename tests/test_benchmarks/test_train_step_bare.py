"""The bare loop of benchmarks/train_step_throughput.py is Unsup3DLifter.train_step, for every
shipped training config: same logged losses, step after step, from the same weights and seed.

The benchmark checks this itself before timing, for the config it measures; this test runs the
check on every config, so a component added to any of them cannot make the benchmark rot.
"""
import copy
import glob
import importlib.util
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(REPO, 'benchmarks')
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'unsup3d', '*.py')) +
                 glob.glob(osp.join(REPO, 'configs', 'unsup3d', 'zoo_h36m', '*.py')))


# Narrow networks: a second thread only waits for a core on a shared machine.
pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def bench():
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    spec = importlib.util.spec_from_file_location('train_step_throughput',
                                                  osp.join(BENCH, 'train_step_throughput.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_inputs(bench, cfg):
    """The config's training set; for Human3.6M configs (no data here) the embedded mocap with
    every field a training step can read (next frames, 3D on 10 % of the rows)."""
    from mmpose.registry import DATASETS
    try:
        dataset = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    except FileNotFoundError:
        dataset = DATASETS.build(dict(type='MocapProjectionDataset', split='train',
                                      clips=['walk', 'run'], with_next=True, with_3d=True,
                                      labelled_fraction=0.1))
    return bench.training_inputs(dataset, torch.device('cpu'))


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_bare_step_gives_the_models_losses(bench, config):
    cfg = Config.fromfile(config)
    model = cfg.model.to_dict()
    if not any(p.requires_grad for p in bench.build_parts(model).parameters()):
        pytest.skip('nothing to train (a baseline without weights)')
    worst = bench.check_same_step(cfg, model, training_inputs(bench, cfg), torch.device('cpu'),
                                  rtol=1e-5, steps=2, width=16, batch=32)
    assert worst <= 1e-5  # measured: 0 (bit-identical) for every config on CPU


def test_unknown_model_argument_is_refused_by_name(bench):
    cfg = Config.fromfile(bench.DEFAULT_CONFIG).model.to_dict()
    with pytest.raises(ValueError, match=r"does not know the model argument\(s\) \['warp'\]"):
        bench.model_arguments(dict(cfg, warp=1))
    with pytest.raises(ValueError, match='is not an Unsup3DLifter'):
        bench.model_arguments(dict(type='PoseLifter'))


def test_a_changed_step_fails_the_check(bench, monkeypatch):
    """The check is not vacuous: a bare step that drops a loss term's weight is caught."""
    cfg = Config.fromfile(bench.DEFAULT_CONFIG)
    inputs = training_inputs(bench, cfg)
    original = bench.BareStep.cycle

    def mirrored(self, x, scores):
        out = original(self, x, scores)
        out['pose_3d'] = out['pose_3d'] * torch.tensor([1.0, 1.0, -1.0])  # depth mirror
        return out

    monkeypatch.setattr(bench.BareStep, 'cycle', mirrored)
    with pytest.raises(RuntimeError, match='loss_chirality at step 0'):
        bench.check_same_step(cfg, cfg.model.to_dict(), inputs, torch.device('cpu'), width=16,
                              batch=32)
