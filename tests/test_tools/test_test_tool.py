"""tools/test.py with zoo models: zoo names as CHECKPOINT, the Human3.6M configs of the zoo's
sizes (configs/unsup3d/zoo_h36m/), the lifter-mismatch message that names the fixing options,
and the "no samples" error of a data root without the test subjects."""
import json
import math
import os
import os.path as osp
import shutil
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
import yaml

from helpers import REPO, committed_weights, load_tool

TEST_NPZ = osp.join('annotation_body3d', 'fps50', 'h36m_test.npz')
TRAIN_NPZ = osp.join('annotation_body3d', 'fps50', 'h36m_train.npz')
DET_TEST = osp.join('joint_2d_det_files', 'cpn_ft_h36m_dbb_test.npy')
ZOO_H36M = osp.join(REPO, 'configs', 'unsup3d', 'zoo_h36m')


def _zoo():
    index = yaml.safe_load(open(osp.join(REPO, 'model-index.yml')))
    return [entry for rel in index['Import']
            for entry in yaml.safe_load(open(osp.join(REPO, rel)))['Models']
            if osp.isfile(committed_weights(entry))]


ZOO = _zoo()
CONF = [e['Name'] for e in ZOO if '-conf_' in e['Name']]


@pytest.fixture(scope='module')
def h36m_root(tmp_path_factory):
    """The project's synthetic Human3.6M-layout fixture (same generator as the dataset tests)."""
    root = str(tmp_path_factory.mktemp('h36m_zoo') / 'h36m')
    load_tool('dataset_converters', 'make_h36m_fixture.py').write_fixture(root)
    return root


@pytest.fixture
def env(tmp_path):
    out = dict(os.environ, OMP_NUM_THREADS='1', MMUNSUP3D_CACHE_DIR=str(tmp_path / 'cache'))
    out.pop('MMUNSUP3D_ZOO_URL', None)  # zoo names resolve to the committed files
    return out


def _test_tool(args, env, cwd):
    return subprocess.run([sys.executable, osp.join(REPO, 'tools', 'test.py'), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_every_zoo_config_has_a_zoo_h36m_config():
    from mmengine.config import Config
    for entry in ZOO:
        stem = osp.splitext(osp.basename(entry['Config']))[0]
        path = osp.join(ZOO_H36M, f'{stem}_h36m.py')
        assert osp.isfile(path), path
        zoo_lifter = Config.fromfile(osp.join(REPO, entry['Config'])).model.lifter
        cfg = Config.fromfile(path)
        for key in ('width', 'num_blocks', 'in_channels'):
            assert cfg.model.lifter[key] == zoo_lifter[key], (path, key)
        test_set = cfg.test_dataloader.dataset
        assert test_set.type == 'H36MLiftingDataset' and test_set.subjects == ['S9', 'S11']
        # The confidence-aware model reads scores, which only detections provide.
        assert test_set.keypoint_2d_src == ('detection' if zoo_lifter.in_channels == 3
                                            else 'gt')


@pytest.mark.parametrize('name', [e['Name'] for e in ZOO])
def test_zoo_model_on_h36m_in_one_command(name, h36m_root, env, tmp_path):
    from mmpose.evaluation.functional import keypoint_mpjpe
    from mmunsup3d.apis import init_lifter, lift_keypoints
    out = tmp_path / 'metrics.json'
    # CHECKPOINT is the zoo name; data_root reaches the datasets through --cfg-options.
    proc = _test_tool([osp.join(ZOO_H36M, f'{name}_h36m.py'), name, '--work-dir',
                       str(tmp_path / 'work'), '--out', str(out), '--cfg-options',
                       f'data_root={h36m_root}'], env, str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert 'ALL' in proc.stdout and 'chirality rate' in proc.stdout
    metrics = json.loads(out.read_text())
    assert all(math.isfinite(metrics[k]) and 0 < metrics[k] < 1.0  # metres
               for k in ('N-MPJPE', 'P-MPJPE', 'MPJPE'))
    # The same number by hand: the zoo model through lift_keypoints, scale-aligned against
    # root-relative camera-frame ground truth (the project's N-MPJPE convention).
    data = np.load(osp.join(h36m_root, TEST_NPZ))
    gt = data['S'][..., :3]
    if name in CONF:
        det = np.load(osp.join(h36m_root, DET_TEST))
        pred = lift_keypoints(init_lifter(name), det[..., :2], det[..., 2])
    else:
        pred = lift_keypoints(init_lifter(name), data['part'][..., :2])
    mask = data['S'][..., 3] > 0
    assert metrics['N-MPJPE'] == pytest.approx(
        keypoint_mpjpe(pred, gt - gt[:, :1], mask, 'scale'), rel=1e-4)
    assert metrics['MPJPE'] == pytest.approx(
        keypoint_mpjpe(pred, gt - gt[:, :1], mask, 'none'), rel=1e-4)


@pytest.mark.skipif(not CONF, reason='no confidence-aware zoo model committed')
def test_width_mismatch_names_the_options_and_they_work(h36m_root, env, tmp_path):
    name = CONF[0]
    base = [osp.join(REPO, 'configs', 'unsup3d_h36m.py'), name, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', f'data_root={h36m_root}']
    proc = _test_tool(base, env, str(tmp_path))
    assert proc.returncode != 0
    assert 'CheckpointMismatchError' in proc.stderr
    assert 'lifter.stem.0.weight: checkpoint shape (512, 51), model shape (1024, 34)' in \
        proc.stderr
    options = 'model.lifter.width=512 model.lifter.num_blocks=4 model.lifter.in_channels=3'
    assert ('the checkpoint holds a ResidualLifter with width=512, num_blocks=4, '
            'in_channels=3 (the model: width=1024, num_blocks=4, in_channels=2); build that '
            f'lifter with --cfg-options {options} ') in proc.stderr
    # Passing exactly those options evaluates the checkpoint (ground-truth 2D, scores = 1).
    out = tmp_path / 'metrics.json'
    proc = _test_tool(base + options.split() + ['--out', str(out)], env, str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert math.isfinite(json.loads(out.read_text())['N-MPJPE'])


def test_data_root_without_test_subjects_names_the_filter(h36m_root, env, tmp_path):
    root = tmp_path / 'train_only'
    shutil.copytree(h36m_root, root)
    shutil.copy(root / TRAIN_NPZ, root / TEST_NPZ)  # a test file holding S1-S8 only
    name = ZOO[0]['Name']
    proc = _test_tool([osp.join(ZOO_H36M, f'{name}_h36m.py'), name, '--work-dir',
                       str(tmp_path / 'work'), '--cfg-options', f'data_root={root}/'], env,
                      str(tmp_path))
    assert proc.returncode != 0
    assert "after the subject filter: subjects=['S9', 'S11'] keeps none of its 7140 sample(s)" \
        in proc.stderr
    assert "The file holds subjects ['S1', 'S5', 'S6', 'S7', 'S8'] and actions ['Directions'," \
        in proc.stderr


def test_resolve_checkpoint(tmp_path, monkeypatch):
    tool = load_tool('test.py')
    monkeypatch.setenv('MMUNSUP3D_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.delenv('MMUNSUP3D_ZOO_URL', raising=False)
    assert tool.resolve_checkpoint('none') is None and tool.resolve_checkpoint('None') is None
    local = tmp_path / 'x.pth'
    local.write_bytes(b'')
    assert tool.resolve_checkpoint(str(local)) == str(local)  # a file is used as it is
    entry = ZOO[0]
    path = tool.resolve_checkpoint(entry['Name'])
    assert path.startswith(str(tmp_path / 'cache')) and \
        open(path, 'rb').read() == open(committed_weights(entry), 'rb').read()
    with pytest.raises(FileNotFoundError, match=r'Checkpoint not found: unsup3d_nope is not a '
                                                r'file, not an http\(s\):// or file:// URL and '
                                                r'not a zoo name or alias \(zoo names: .*'
                                                + entry['Name']):
        tool.resolve_checkpoint('unsup3d_nope')


# ----------------------------------------------------------------- the hint, at unit level
def _lifter_model(**lifter):
    from mmpose.registry import MODELS
    cfg = dict(type='ResidualLifter', num_keypoints=17, width=16, num_blocks=1, in_channels=2)
    cfg.update(lifter)
    model = torch.nn.Module()
    model.lifter = MODELS.build(cfg)
    return model


def _state(model):
    return OrderedDict(model.state_dict())


def test_mismatch_hint_is_read_from_the_checkpoint_shapes():
    from mmunsup3d.utils.checkpoint import CheckpointMismatchError, load_state_dict_strict
    model = _lifter_model()
    ckpt = _state(_lifter_model(width=8, num_blocks=3, in_channels=3, use_bn=False))
    with pytest.raises(CheckpointMismatchError) as excinfo:
        load_state_dict_strict(model, ckpt, ('lifter.', ), source='c.pth')
    assert ('the checkpoint holds a ResidualLifter with width=8, num_blocks=3, in_channels=3, '
            'use_bn=False (the model: width=16, num_blocks=1, in_channels=2, use_bn=True); '
            'build that lifter with --cfg-options model.lifter.width=8 '
            'model.lifter.num_blocks=3 model.lifter.in_channels=3 model.lifter.use_bn=False '
            "(tools/test.py, tools/train.py; cfg_options={'model.lifter.width': 8, "
            "'model.lifter.num_blocks': 3, 'model.lifter.in_channels': 3, "
            "'model.lifter.use_bn': False} for mmunsup3d.apis.init_lifter)") in \
        str(excinfo.value)
    # Only the depth differs: all three sizes are still named (use_bn only when it differs).
    with pytest.raises(CheckpointMismatchError,
                       match=r'--cfg-options model\.lifter\.width=16 model\.lifter\.num_blocks=2 '
                             r'model\.lifter\.in_channels=2 \(tools'):
        load_state_dict_strict(model, _state(_lifter_model(num_blocks=2)), ('lifter.', ))


def test_no_hint_when_the_sizes_already_match():
    from mmunsup3d.utils.checkpoint import CheckpointMismatchError, load_state_dict_strict
    model = _lifter_model()
    ckpt = _state(_lifter_model())
    del ckpt['lifter.out.bias']  # a damaged file: no size option can fix it
    with pytest.raises(CheckpointMismatchError, match=r'missing keys \(1\): lifter\.out\.bias') \
            as excinfo:
        load_state_dict_strict(model, ckpt, ('lifter.', ))
    assert '--cfg-options' not in str(excinfo.value)


# ----------------------------------------------------------------- configs that are not ours
@pytest.mark.parametrize('text, missing', [
    ("data_root = 'data/h36m/'\n", 'model, test_dataloader, test_cfg, test_evaluator'),
    ("model = dict(type='PoseLifter')\ntest_cfg = dict(type='TestLoop')\n",
     'test_dataloader, test_evaluator'),
    ("model = dict(backbone=dict(type='ResidualLifter'))\n",
     'test_dataloader, test_cfg, test_evaluator, model.type'),
])
def test_config_without_model_or_test_loop_is_a_clear_error(text, missing, env, tmp_path):
    config = tmp_path / 'not_a_test_config.py'
    config.write_text(text)
    work = tmp_path / 'work'
    proc = _test_tool([str(config), 'none', '--work-dir', str(work)], env, str(tmp_path))
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr and 'KeyError' not in proc.stderr, proc.stderr[-3000:]
    assert (f'tools/test.py: error: {config} cannot be run by tools/test.py: it has no '
            f'{missing} (tools/test.py needs model, test_dataloader, test_cfg, '
            'test_evaluator)') in proc.stderr
    assert not work.exists()  # refused before the Runner exists
