"""With ``mmunsup3d`` imported, MMEngine's checkpoint schemes load what plain MMEngine loads.

Offline stand-ins for the network: a ``http.server`` on 127.0.0.1 serving checkpoints under
OpenMMLab-style names, and a torch hub cache pre-seeded under ``$TORCH_HOME`` for
``torchvision://`` / ``open-mmlab://`` (MMEngine looks there before downloading).
"""
import copy
import http.server
import os
import os.path as osp
import subprocess
import sys
import textwrap
import threading

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader, get_external_models

import mmunsup3d  # noqa: F401  (replaces MMEngine's loaders)
from helpers import REPO
from mmunsup3d.utils.checkpoint import UnsafeCheckpointError
from mmunsup3d.utils.host_loaders import HashMismatchError
from mmunsup3d.utils.file_names import hash_prefix_of
from mmunsup3d.utils.zoo import sha256sum

POSELIFTER = osp.join(REPO, 'configs', 'mmpose_poselifter',
                      'poselifter_reslifter-regression_1xb256-20e_pybullet-mocap.py')


class _Quiet(http.server.SimpleHTTPRequestHandler):

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """``(base_url, folder)``: files put into ``folder`` are served at ``base_url/<name>``."""
    folder = tmp_path / 'served'
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), lambda *a: _Quiet(*a, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}', folder
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache (``$TORCH_HOME/hub/checkpoints``)."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    path = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope='module')
def tiny_poselifter(tmp_path_factory):
    """An MMPose ``PoseLifter`` config (width 32) on disk and a checkpoint of it."""
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules
    register_all_modules()
    root = tmp_path_factory.mktemp('poselifter')
    cfg = Config.fromfile(POSELIFTER)
    cfg.model.backbone.width = cfg.model.head.in_channels = 32
    config = str(root / 'tiny_poselifter.py')
    cfg.dump(config)
    model = MODELS.build(copy.deepcopy(cfg.model))
    torch.manual_seed(0)
    for p in model.parameters():
        p.data.normal_(0, 0.1)
    ckpt = str(root / 'ckpt.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 20}}, ckpt)
    return config, ckpt, model.state_dict()


def _serve(folder, src: str, name: str) -> str:
    with open(src, 'rb') as f_in, open(folder / name, 'wb') as f_out:
        f_out.write(f_in.read())
    return name


def test_hash_in_file_names():
    assert hash_prefix_of('rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.pth') \
        == 'e48f03d0'
    assert hash_prefix_of('resnet50-0676ba61.pth') == '0676ba61'
    assert hash_prefix_of('hrnet_w32_coco_256x192-c78dce93_20200708.pth') == 'c78dce93'
    assert hash_prefix_of('model.pth') is None
    assert hash_prefix_of('model_20230504.pth') is None


@pytest.mark.parametrize('named', ['hash-date', 'hash', 'no-hash'])
def test_init_model_loads_an_openmmlab_named_url(tiny_poselifter, server, hub, named):
    """``mmpose.apis.init_model`` over http, names as OpenMMLab publishes them."""
    from mmpose.apis import init_model
    config, ckpt, weights = tiny_poselifter
    base, folder = server
    short = sha256sum(ckpt)[:8]
    name = {'hash-date': f'poselifter-{short}_20230504.pth', 'hash': f'poselifter-{short}.pth',
            'no-hash': 'poselifter_latest.pth'}[named]
    _serve(folder, ckpt, name)
    model = init_model(config, f'{base}/{name}', device='cpu')
    for key, value in weights.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert sorted(os.listdir(hub)) == [name]  # cached where MMEngine caches, nothing else


def test_wrong_hash_in_the_name_is_refused_and_nothing_is_kept(tiny_poselifter, server, hub):
    from mmpose.apis import init_model
    config, ckpt, _ = tiny_poselifter
    base, folder = server
    wrong = 'ffffffff' if not sha256sum(ckpt).startswith('ffffffff') else 'eeeeeeee'
    name = _serve(folder, ckpt, f'poselifter-{wrong}_20230504.pth')
    with pytest.raises(HashMismatchError, match=f'does not start with {wrong}'):
        init_model(config, f'{base}/{name}', device='cpu')
    assert os.listdir(hub) == []


def test_torchvision_and_openmmlab_schemes_resolve_to_the_hub_cache(hub, tiny_poselifter):
    """Offline, as plain MMEngine: a file already in the cache is used as it is."""
    from mmengine.runner.checkpoint import get_torchvision_models
    _, ckpt, weights = tiny_poselifter
    urls = {'torchvision://resnet18': get_torchvision_models()['resnet18'],
            'open-mmlab://vgg16_caffe': get_external_models()['vgg16_caffe']}
    for scheme_name, url in urls.items():
        _serve(hub, ckpt, osp.basename(url))
        loaded = CheckpointLoader.load_checkpoint(scheme_name, map_location='cpu')
        assert torch.equal(loaded['state_dict']['backbone.stem.0.weight'],
                           weights['backbone.stem.0.weight']), scheme_name


_STOCK_RUN = textwrap.dedent('''
    """A stock MMEngine training run (no mmunsup3d): toy model, EMA, dataset_meta with NumPy."""
    import sys
    import numpy as np
    import torch
    from torch import nn
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 1)

        def forward(self, x, y, mode='tensor'):
            out = self.fc(x).squeeze(-1)
            if mode == 'loss':
                return dict(loss=((out - y) ** 2).mean())
            return out

    class Data(torch.utils.data.Dataset):
        metainfo = dict(sigmas=np.array([0.1, 0.2], dtype=np.float32),
                        flip_indices=[1, 0], name='toy')

        def __len__(self):
            return 8

        def __getitem__(self, i):
            return dict(x=torch.tensor([float(i), 1.0]), y=torch.tensor(float(i)))

    runner = Runner(
        model=Toy(), work_dir=sys.argv[1], experiment_name='stock',
        train_dataloader=dict(dataset=Data(), batch_size=4,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=int(sys.argv[2])),
        load_from=sys.argv[3] if len(sys.argv) > 3 else None, resume=len(sys.argv) > 3,
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=1e-3)),
        param_scheduler=dict(type='StepLR', step_size=1, by_epoch=True),
        custom_hooks=[dict(type='EMAHook')],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)))
    runner.train()
    print('plugin imported:', 'mmunsup3d' in sys.modules, 'epoch:', runner.epoch)
''')


@pytest.fixture(scope='module')
def stock_checkpoint(tmp_path_factory):
    """``epoch_2.pth`` written by a stock MMEngine Runner in a process without the plugin."""
    work = tmp_path_factory.mktemp('stock')
    script = work / 'stock_run.py'
    script.write_text(_STOCK_RUN)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    done = subprocess.run([sys.executable, str(script), str(work), '2'], env=env,
                          cwd=str(work), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'plugin imported: False epoch: 2' in done.stdout
    return str(work / 'epoch_2.pth')


def test_stock_mmengine_checkpoint_loads_with_the_plugin(stock_checkpoint, monkeypatch):
    """message_hub (HistoryBuffer), dataset_meta with NumPy, optimizer, schedulers, EMA."""
    from mmengine.logging import HistoryBuffer
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    ckpt = CheckpointLoader.load_checkpoint(stock_checkpoint, map_location='cpu')
    assert {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers',
            'ema_state_dict'} <= set(ckpt)
    buffers = ckpt['message_hub']['log_scalars']
    assert buffers and all(type(b) is HistoryBuffer for b in buffers.values())
    assert float(buffers['train/loss'].current()) > 0
    sigmas = ckpt['meta']['dataset_meta']['sigmas']
    assert type(sigmas) is torch.Tensor or type(sigmas).__name__ == 'ndarray'
    assert sigmas.tolist() == pytest.approx([0.1, 0.2])


def test_stock_checkpoint_resumes_in_a_process_with_the_plugin(stock_checkpoint, tmp_path):
    script = tmp_path / 'stock_run.py'
    script.write_text(_STOCK_RUN)
    env = dict(os.environ, OMP_NUM_THREADS='1', TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')
    done = subprocess.run([sys.executable, '-c', 'import sys, mmunsup3d; sys.argv.pop(0); '
                           'exec(open(sys.argv[0]).read())', str(script), str(tmp_path / 'w'),
                           '3', stock_checkpoint], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'plugin imported: True epoch: 3' in done.stdout
    assert 'resumed epoch: 2' in done.stdout + done.stderr


def test_unsafe_file_error_names_mmunsup3d_and_the_trust_route(tmp_path):

    class Payload:

        def __reduce__(self):
            return (os.system, ('true', ))

    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': {'x': Payload()}}, path)
    with pytest.raises(UnsafeCheckpointError) as excinfo:
        CheckpointLoader.load_checkpoint(path)
    msg = str(excinfo.value)
    assert 'mmunsup3d' in msg and 'convert-checkpoint' in msg and '--trust' in msg, msg


def test_plain_torch_load_is_not_widened_by_the_plugin(tmp_path, stock_checkpoint):
    """The allow-list is scoped to the plugin's loads: plain torch.load behaves as without it."""
    import pickle
    with pytest.raises(pickle.UnpicklingError):
        torch.load(stock_checkpoint, weights_only=True)
    assert not any('mmunsup3d' in str(g) for g in torch.serialization.get_safe_globals())
