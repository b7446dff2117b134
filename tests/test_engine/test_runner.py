"""Unsup3DRunner: the load_from / resume policy, and the checkpoint hook it registers."""
import os.path as osp

import pytest
import torch

from helpers import tiny_cfg
from mmunsup3d.engine import AtomicCheckpointHook, Unsup3DRunner, build_runner
from mmunsup3d.engine.runner import _plan_prefixes
from mmunsup3d.utils import safe_torch_load
from mmunsup3d.utils.checkpoint import CheckpointMismatchError


def _cfg(work_dir: str, max_epochs: int = 1):
    cfg = tiny_cfg(work_dir, max_epochs=max_epochs, clips=('walk', ))
    cfg.train_dataloader.batch_size = 512  # a few iterations per epoch
    return cfg


@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> str:
    """A one-epoch training checkpoint of the tiny model, written by Unsup3DRunner."""
    work = str(tmp_path_factory.mktemp('runner'))
    build_runner(_cfg(work)).train()
    return osp.join(work, 'epoch_1.pth')


# --------------------------------------------------------------------------- policy, by keys
OWN = ['lifter.stem.0.weight', 'lifter.out.bias', 'discriminator.stem.0.weight',
       'temporal_discriminator.out.bias']


def test_load_from_lets_absent_submodules_keep_their_initialisation():
    prefixes, fresh = _plan_prefixes(OWN, OWN[:2], ('lifter.', ), require_all=False)
    assert prefixes == ('lifter.', ) and fresh == ['discriminator', 'temporal_discriminator']
    # A submodule the checkpoint has any weight of is loaded strictly (missing keys reported).
    prefixes, fresh = _plan_prefixes(OWN, OWN[:3], ('lifter.', ), require_all=False)
    assert prefixes == ('lifter.', 'discriminator.') and fresh == ['temporal_discriminator']
    # The lifter is required even when the checkpoint has none of it.
    prefixes, fresh = _plan_prefixes(OWN, OWN[2:], ('lifter.', ), require_all=False)
    assert prefixes == ('lifter.', 'discriminator.', 'temporal_discriminator.') and not fresh
    # A submodule the model does not have is checked too (its keys are unexpected).
    prefixes, _ = _plan_prefixes(OWN, OWN[:2] + ['adapter.fc.weight'], ('lifter.', ), False)
    assert prefixes[-1] == 'adapter.'


def test_resume_and_models_without_inference_modules_need_every_key():
    prefixes, fresh = _plan_prefixes(OWN, OWN[:2], ('lifter.', ), require_all=True)
    assert prefixes == ('lifter.', 'discriminator.', 'temporal_discriminator.') and not fresh
    assert _plan_prefixes(OWN, OWN[:2], ('', ), require_all=False) == (('', ), [])
    # A key outside every submodule can only be checked with the prefix ''.
    assert _plan_prefixes(OWN + ['scale'], OWN, ('lifter.', ), False) == (('', ), [])


# --------------------------------------------------------------------------- with a real model
def test_load_checkpoint_refuses_a_partial_submodule(trained, tmp_path):
    state = safe_torch_load(trained)['state_dict']
    partial = {k: v for k, v in state.items()
               if k.startswith('lifter.') or k == 'discriminator.stem.0.weight'}
    path = str(tmp_path / 'partial.pth')
    torch.save(dict(state_dict=partial), path)
    runner = build_runner(_cfg(str(tmp_path / 'work')))
    with pytest.raises(CheckpointMismatchError) as info:
        runner.load_checkpoint(path)
    assert f'Checkpoint {path} does not fit the model' in str(info.value)
    assert 'missing keys' in str(info.value) and 'discriminator.' in str(info.value)
    # strict=True (as resume): the lifter alone is not enough either.
    lifter_only = str(tmp_path / 'lifter.pth')
    torch.save(dict(state_dict={k: v for k, v in state.items() if k.startswith('lifter.')}),
               lifter_only)
    with pytest.raises(CheckpointMismatchError, match=r'missing keys .*discriminator\.'):
        runner.load_checkpoint(lifter_only, strict=True)
    runner.load_checkpoint(lifter_only)  # the load_from policy: fine
    loaded = runner.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if k.startswith('lifter.'))


def test_resume_from_a_matching_checkpoint(trained, tmp_path):
    cfg = _cfg(str(tmp_path / 'work'), max_epochs=2)
    cfg.resume, cfg.load_from = True, trained
    runner = build_runner(cfg)
    assert isinstance(runner, Unsup3DRunner)
    runner.train()
    first = safe_torch_load(trained)['meta']
    last = safe_torch_load(osp.join(cfg.work_dir, 'epoch_2.pth'))['meta']
    assert (last['epoch'], last['iter']) == (2, 2 * first['iter'])


def test_plain_checkpoint_hook_becomes_atomic(tmp_path):
    cfg = _cfg(str(tmp_path / 'work'))
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=3, max_keep_ckpts=1)
    hooks = [h for h in build_runner(cfg).hooks if type(h).__name__.endswith('CheckpointHook')]
    assert len(hooks) == 1 and isinstance(hooks[0], AtomicCheckpointHook)
    assert (hooks[0].interval, hooks[0].max_keep_ckpts) == (3, 1)
