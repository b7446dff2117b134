"""Every checkpoint load is safe (allow-list, also under TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD) and
strict (a checkpoint that does not fit the model is an error naming keys and shapes)."""
import copy
import http.server
import json
import os
import os.path as osp
import random
import subprocess
import sys
import threading
import warnings

import pytest
import torch
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

import mmunsup3d  # noqa: F401  (registers the safe MMEngine checkpoint loaders)
from helpers import REPO, load_tool, tiny_cfg
from mmpose.registry import MODELS
from mmunsup3d.apis import init_lifter
from mmunsup3d.utils.zoo import sha256sum
from mmunsup3d.utils.checkpoint import (CheckpointMismatchError, UnsafeCheckpointError,
                                        load_state_dict_strict, safe_torch_load)

FORCE = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
ENV_STATES = [pytest.param(False, id='default-env'), pytest.param(True, id=f'{FORCE}=1')]

convert_tool = load_tool('misc', 'convert_to_mmpose_lifter.py')
export_tool = load_tool('deployment', 'export_onnx.py')
publish_tool = load_tool('misc', 'publish_model.py')


class _Payload:
    """Unpickling it runs a shell command that creates ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch "{self.marker}"', ))


def _evil_checkpoint(path, marker) -> str:
    """A training-checkpoint-like file whose meta carries the payload."""
    torch.save({'state_dict': {}, 'meta': {'epoch': 1, 'note': _Payload(str(marker))}}, str(path))
    return str(path)


def _set_force(monkeypatch, force: bool) -> None:
    if force:
        monkeypatch.setenv(FORCE, '1')
    else:
        monkeypatch.delenv(FORCE, raising=False)


def _assert_unsafe(excinfo, marker) -> None:
    msg = str(excinfo.value)
    assert 'allow-list' in msg and 'system' in msg, msg  # names the offending global
    assert 'weights_only=False' not in msg and 'weights_only` set to `False' not in msg
    assert not osp.exists(marker), 'the payload ran'


def _subprocess_env(force: bool) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='default')
    env.pop(FORCE, None)
    if force:
        env[FORCE] = '1'
    return env


def _run_test_tool(config: str, ckpt: str, work: str, force: bool = False, out=None):
    args = [sys.executable, 'tools/test.py', config, ckpt, '--work-dir', work]
    if out:
        args += ['--out', out]
    return subprocess.run(args, cwd=REPO, env=_subprocess_env(force), capture_output=True,
                          text=True, timeout=300)


def _perturbed_model(cfg, width: int = 32, seed: int = 0):
    """A full Unsup3DLifter (discriminator included) with non-default weights."""
    cfg = copy.deepcopy(cfg)  # Config.copy() is shallow: it would change the caller's cfg
    cfg.model.lifter.width = width
    model = MODELS.build(cfg.model)
    torch.manual_seed(seed)
    for p in model.parameters():
        p.data.normal_(0, 0.1)
    return model


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Tiny config (width 32) on disk + a fitting full checkpoint + a width-64 one."""
    root = tmp_path_factory.mktemp('ckpt_safety')
    cfg = tiny_cfg(str(root / 'work'))
    config = str(root / 'tiny.py')
    cfg.dump(config)
    full = str(root / 'full.pth')
    model = _perturbed_model(cfg)
    torch.save({'meta': {'cfg': cfg.pretty_text}, 'state_dict': model.state_dict()}, full)
    wide = str(root / 'wide.pth')
    torch.save({'meta': {}, 'state_dict': _perturbed_model(cfg, width=64).state_dict()}, wide)
    return dict(cfg=cfg, config=config, full=full, wide=wide, model=model)


# ------------------------------------------------------------------------------ the payload
def test_payload_is_live_without_the_safe_loader(tmp_path):
    """Control: plain unpickling of the test file does run the payload."""
    marker = tmp_path / 'CONTROL'
    path = _evil_checkpoint(tmp_path / 'evil.pth', marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize('force', ENV_STATES)
def test_safe_torch_load_refuses_payload(tmp_path, monkeypatch, force):
    _set_force(monkeypatch, force)
    marker = tmp_path / 'PWNED'
    path = _evil_checkpoint(tmp_path / 'evil.pth', marker)
    with pytest.raises(UnsafeCheckpointError) as excinfo:
        safe_torch_load(path)
    _assert_unsafe(excinfo, marker)


@pytest.mark.parametrize('force', ENV_STATES)
def test_mmengine_loaders_refuse_payload(setup, tmp_path, monkeypatch, force):
    _set_force(monkeypatch, force)
    marker = tmp_path / 'PWNED'
    path = _evil_checkpoint(tmp_path / 'evil.pth', marker)
    model = MODELS.build(setup['cfg'].model)
    for name in (path, 'file://' + path):
        with pytest.raises(UnsafeCheckpointError) as excinfo:
            load_checkpoint(model, name, map_location='cpu')
        _assert_unsafe(excinfo, marker)
    # Runner: ``load_from`` (train/test) and ``resume`` (tools/train.py --resume).
    for resume in (False, True):
        cfg = tiny_cfg(str(tmp_path / f'work{int(resume)}'))
        cfg.load_from, cfg.resume = path, resume
        runner = Runner.from_cfg(cfg)
        with pytest.raises(UnsafeCheckpointError) as excinfo:
            runner.load_or_resume()
        _assert_unsafe(excinfo, marker)
    # Every other scheme of MMEngine's goes through the same safe loader (the resolution of
    # torchvision:// and open-mmlab:// names is tested in test_host_loaders.py).
    from mmunsup3d.utils import host_loaders
    for name in ('open-mmlab://x', 'torchvision://x', 's3://bucket/x.pth', 'pavi://x',
                 'mmcls://x', 'modelzoo://x', 'petrel://x', 'http://x', 'https://x', 'x',
                 'file://x'):
        assert CheckpointLoader._get_checkpoint_loader(name).__module__ == \
            host_loaders.__name__, name


class _Handler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.mark.parametrize('force', ENV_STATES)
def test_mmengine_http_loader_verifies_and_refuses_payload(setup, tmp_path, monkeypatch,
                                                           force):
    _set_force(monkeypatch, force)
    monkeypatch.setenv('MMUNSUP3D_CACHE_DIR', str(tmp_path / 'cache'))
    marker = tmp_path / 'PWNED'
    serve = tmp_path / 'serve'
    serve.mkdir()
    evil = _evil_checkpoint(tmp_path / 'evil.pth', marker)
    name = f'evil_20260101-{sha256sum(evil)[:8]}.pth'
    os.replace(evil, serve / name)
    # The full checkpoint too, to show that the loader does load a good file over http.
    good = f'full_20260101-{sha256sum(setup["full"])[:8]}.pth'
    with open(setup['full'], 'rb') as src, open(serve / good, 'wb') as dst:
        dst.write(src.read())
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), lambda *a: _Handler(*a, directory=str(serve)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f'http://127.0.0.1:{server.server_address[1]}'
        model = MODELS.build(setup['cfg'].model)
        with pytest.raises(UnsafeCheckpointError) as excinfo:
            load_checkpoint(model, f'{base}/{name}', map_location='cpu')
        _assert_unsafe(excinfo, marker)
        load_checkpoint(model, f'{base}/{good}', map_location='cpu')
        for key, value in setup['model'].state_dict().items():
            assert torch.equal(model.state_dict()[key], value), key
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize('force', ENV_STATES)
def test_tools_refuse_payload(setup, tmp_path, monkeypatch, force):
    """init_lifter, the MMPose converter, the ONNX export and publish_model."""
    _set_force(monkeypatch, force)
    marker = tmp_path / 'PWNED'
    path = _evil_checkpoint(tmp_path / 'evil.pth', marker)
    out = tmp_path / 'out'
    calls = {
        'init_lifter': lambda: init_lifter(setup['cfg'], path),
        'convert': lambda: convert_tool.convert(path, str(out / 'mm.pth'),
                                                config=setup['config']),
        'export': lambda: export_tool.export_onnx(setup['cfg'], path, str(out / 'm.onnx')),
        'publish': lambda: publish_tool.publish(path, str(out / 'pub.pth')),
    }
    for name, call in calls.items():
        with pytest.raises(UnsafeCheckpointError) as excinfo:
            call()
        _assert_unsafe(excinfo, marker)
        assert not out.exists() or not os.listdir(out), f'{name} wrote {os.listdir(out)}'


@pytest.mark.parametrize('force', ENV_STATES)
def test_test_tool_refuses_payload(setup, tmp_path, force):
    marker = tmp_path / 'PWNED'
    path = _evil_checkpoint(tmp_path / 'evil.pth', marker)
    proc = _run_test_tool(setup['config'], path, str(tmp_path / 'work'), force=force)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert 'UnsafeCheckpointError' in proc.stderr and 'allow-list' in proc.stderr, \
        proc.stderr[-3000:]
    assert 'weights_only=False' not in proc.stderr
    assert 'MPJPE (mm)' not in proc.stdout  # no metrics table from random weights
    assert not marker.exists(), 'the payload ran'
    assert not (tmp_path / 'work').exists()  # refused before the Runner set anything up


# -------------------------------------------------------------------------------- strictness
def test_test_tool_refuses_width_mismatch(setup, tmp_path):
    proc = _run_test_tool(setup['config'], setup['wide'], str(tmp_path / 'work'))
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert 'CheckpointMismatchError' in proc.stderr, proc.stderr[-3000:]
    assert 'lifter.stem.0.weight: checkpoint shape (64, 34), model shape (32, 34)' in \
        proc.stderr, proc.stderr[-3000:]
    assert 'MPJPE (mm)' not in proc.stdout


@pytest.mark.parametrize('scale,expect', [(float('nan'), 'NaN or infinite'),
                                          (1e30, 'predictions are not finite')],
                         ids=['nan-weights', 'overflowing-weights'])
def test_test_tool_names_corrupt_weights(setup, tmp_path, scale, expect):
    """int64/NaN weights are refused at load; finite but huge ones where the metric fails."""
    state = {k: v * scale if v.is_floating_point() and 'running_var' not in k else v
             for k, v in setup['model'].state_dict().items()}
    path = str(tmp_path / 'corrupt.pth')
    torch.save({'state_dict': state, 'meta': {}}, path)
    proc = _run_test_tool(setup['config'], path, str(tmp_path / 'work'))
    assert proc.returncode != 0 and expect in proc.stderr, proc.stderr[-3000:]
    assert 'MPJPE (mm)' not in proc.stdout


def test_width_mismatch_is_refused_by_init_lifter_converter_and_export(setup, tmp_path):
    with pytest.raises(CheckpointMismatchError,
                       match=r'lifter\.stem\.0\.weight: checkpoint shape \(64, 34\), model '
                       r'shape \(32, 34\)'):
        init_lifter(setup['cfg'], setup['wide'])
    out = tmp_path / 'out'
    with pytest.raises(CheckpointMismatchError,
                       match=r'backbone\.stem\.0\.weight: checkpoint shape \(64, 34\), model '
                       r'shape \(32, 34\)'):
        convert_tool.convert(setup['wide'], str(out / 'mm.pth'), config=setup['config'])
    with pytest.raises(CheckpointMismatchError, match=r'\(64, 34\).*\(32, 34\)'):
        export_tool.export_onnx(setup['cfg'], setup['wide'], str(out / 'm.onnx'))
    assert not out.exists() or not os.listdir(out)
    # More blocks in the checkpoint than in the config: unexpected keys, not a silent drop.
    deep = copy.deepcopy(setup['cfg'])
    deep.model.lifter.num_blocks = 2
    deep_ckpt = str(tmp_path / 'deep.pth')
    torch.save({'state_dict': MODELS.build(deep.model).state_dict()}, deep_ckpt)
    with pytest.raises(CheckpointMismatchError,
                       match=r'unexpected keys \(\d+\): lifter\.blocks\.1'):
        init_lifter(setup['cfg'], deep_ckpt)


def test_load_state_dict_strict_reports_and_loads(setup):
    model = MODELS.build(setup['cfg'].model)
    ref = setup['model'].state_dict()
    state = {k: v for k, v in ref.items() if k != 'lifter.out.bias'}
    state['lifter.extra'] = torch.zeros(3)
    state['lifter.stem.0.bias'] = torch.zeros(7)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as excinfo:
        load_state_dict_strict(model, state, source='x.pth')
    msg = str(excinfo.value)
    assert 'Checkpoint x.pth does not fit' in msg and "keys under 'lifter.'" in msg
    assert 'missing keys (1): lifter.out.bias' in msg
    assert 'unexpected keys (1): lifter.extra' in msg
    assert 'lifter.stem.0.bias: checkpoint shape (7,), model shape (32,)' in msg
    # Refused means untouched (the other keys were not loaded either).
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # Lifter-only, half precision: loads, cast to float32, the rest of the model untouched, and
    # no warning at all.
    lifter_only = {k: v.half() if v.is_floating_point() else v for k, v in ref.items()
                   if k.startswith('lifter.')}
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        load_state_dict_strict(model, lifter_only, prefixes=('lifter', ))
    for key, value in model.state_dict().items():
        if key.startswith('lifter.'):
            assert value.dtype == ref[key].dtype
            assert torch.equal(value, ref[key].half().to(value.dtype)), key
        else:
            assert torch.equal(value, before[key]), key
    # Every key when asked: the discriminator is then missing.
    with pytest.raises(CheckpointMismatchError, match=r'(?s)all keys.*missing keys \(\d+\): '
                       r'discriminator\.'):
        load_state_dict_strict(model, lifter_only, prefixes=None)


@pytest.mark.parametrize('corrupt,match', [
    (lambda v: v.long(), r'lifter\.\S+: checkpoint dtype torch\.int64, model dtype torch\.float32'),
    (lambda v: v.clone().fill_(float('nan')), r'values are NaN or infinite'),
    (lambda v: v.clone().fill_(float('inf')), r'values are NaN or infinite'),
], ids=['int64-weights', 'nan-weights', 'inf-weights'])
def test_integer_and_non_finite_weights_are_refused(setup, corrupt, match):
    """Cast silently, int64 weights would evaluate nonsense; NaN/inf weights crash later."""
    model = MODELS.build(setup['cfg'].model)
    state = {k: corrupt(v) if v.is_floating_point() else v
             for k, v in setup['model'].state_dict().items()}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=match):
        load_state_dict_strict(model, state, source='bad.pth')
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_keys_of_nested_ddp_wrappers_load_into_the_bare_model(setup):
    # MMSeparateDistributedDataParallel checkpoints written before BareStateDictHook.
    ref = setup['model'].state_dict()
    wrapped = {k.replace('lifter.', 'lifter.module.', 1): v for k, v in ref.items()}
    model = MODELS.build(setup['cfg'].model)
    load_state_dict_strict(model, wrapped, source='dist.pth')
    assert all(torch.equal(v, ref[k]) for k, v in model.lifter.state_dict(
        prefix='lifter.').items())


def test_lifter_only_checkpoint_through_test_tool_has_no_warning_and_same_numbers(
        setup, tmp_path):
    published = publish_tool.publish(setup['full'], str(tmp_path / 'pub' / 'tiny.pth'),
                                     lifter_only=True, date='20260101')
    assert all(k.startswith('lifter.') for k in safe_torch_load(published)['state_dict'])
    out = str(tmp_path / 'metrics.json')
    proc = _run_test_tool(setup['config'], published, str(tmp_path / 'work'), out=out)
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = (proc.stdout + proc.stderr).lower()
    for phrase in ('missing key', 'unexpected key', 'do not match', 'discriminator.'):
        assert phrase not in text, phrase
    assert 'MPJPE (mm)' in proc.stdout
    metrics = json.loads(open(out).read())
    # The same numbers as MMEngine's own (now safe) load_from of the full training checkpoint.
    cfg = tiny_cfg(str(tmp_path / 'ref'))
    cfg.load_from = setup['full']
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    ref = Runner.from_cfg(cfg).test()
    for key in ('MPJPE', 'P-MPJPE', 'N-MPJPE'):
        assert metrics[key] == pytest.approx(float(ref[key]), rel=1e-6), key


# ------------------------------------------------------------------------ corrupt / not a file
def _random_bytes(n: int = 4096) -> bytes:
    data = random.Random(0).randbytes(n)
    assert not data.startswith((b'PK', b'\x80'))  # neither a zip nor a pickle
    return data


@pytest.mark.parametrize('force', ENV_STATES)
def test_random_truncated_and_empty_files_are_corrupt_not_unsafe(setup, tmp_path, monkeypatch,
                                                                 force):
    _set_force(monkeypatch, force)
    random_file = tmp_path / 'random.pth'
    random_file.write_bytes(_random_bytes())
    pickle_like = tmp_path / 'pickle_like.pth'
    pickle_like.write_bytes(b'\x80\x02' + _random_bytes())
    with open(setup['full'], 'rb') as f:
        full = f.read()
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(full[:len(full) // 2])
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    model = MODELS.build(setup['cfg'].model)
    for path in (random_file, pickle_like, truncated, empty):
        for call in (lambda: safe_torch_load(str(path)),
                     lambda: init_lifter(setup['cfg'], str(path)),
                     lambda: load_checkpoint(model, str(path))):
            with pytest.raises(RuntimeError, match='corrupt|not a checkpoint') as excinfo:
                call()
            assert not isinstance(excinfo.value, UnsafeCheckpointError), path.name
            assert 'weights_only' not in str(excinfo.value), str(excinfo.value)
    with pytest.raises(FileNotFoundError, match='Checkpoint not found'):
        safe_torch_load(str(tmp_path / 'missing.pth'))
