"""ONNX export of the committed lifter matches :func:`lift_keypoints`."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import yaml

from helpers import REPO
from mmunsup3d.apis import init_lifter, lift_keypoints
from mmunsup3d.datasets import MocapProjectionDataset

ort = pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')


def _committed():
    index = yaml.safe_load(open(osp.join(REPO, 'model-index.yml')))
    for rel in index['Import']:
        for entry in yaml.safe_load(open(osp.join(REPO, rel)))['Models']:
            if osp.isfile(osp.join(REPO, entry['Weights'])):
                return entry
    pytest.skip('no committed checkpoint')


def test_export_matches_lift_keypoints(tmp_path, monkeypatch):
    entry = _committed()
    monkeypatch.setenv('MMUNSUP3D_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.delenv('MMUNSUP3D_ZOO_URL', raising=False)
    out = tmp_path / 'onnx' / 'lifter.onnx'
    # CKPT given as a zoo name (resolved to the committed, verified file).
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'deployment', 'export_onnx.py'),
         osp.join(REPO, entry['Config']), entry['Name'], str(out), '--opset', '17'],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert out.is_file() and sorted(p.name for p in out.parent.iterdir()) == ['lifter.onnx']

    model = init_lifter(osp.join(REPO, entry['Config']), osp.join(REPO, entry['Weights']))
    kpts = MocapProjectionDataset(split='test').arrays['keypoints_2d'].astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    (inp, ), (outp, ) = sess.get_inputs(), sess.get_outputs()
    assert inp.name == 'keypoints_2d' and outp.name == 'pose_3d'
    assert not isinstance(inp.shape[0], int)  # dynamic batch axis
    for batch in (1, 37):
        x = kpts[:batch] if batch == 1 else kpts[len(kpts) // 2:len(kpts) // 2 + batch]
        got = sess.run(None, {'keypoints_2d': x})[0]
        assert got.shape == (batch, 17, 3)
        np.testing.assert_allclose(got, lift_keypoints(model, x), atol=1e-4, rtol=0)


def test_export_with_head_root_rescale(tmp_path):
    """``test_cfg.output_head_root`` is part of the graph (loaded via the module API)."""
    import importlib.util
    from mmengine.config import Config
    entry = _committed()
    spec = importlib.util.spec_from_file_location(
        'export_onnx', osp.join(REPO, 'tools', 'deployment', 'export_onnx.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = Config.fromfile(osp.join(REPO, entry['Config']))
    cfg.model.test_cfg = dict(output_head_root=0.55)
    ckpt = osp.join(REPO, entry['Weights'])
    out = mod.export_onnx(cfg, ckpt, str(tmp_path / 'scaled.onnx'))
    model = init_lifter(cfg, ckpt)
    x = MocapProjectionDataset(split='test').arrays['keypoints_2d'][:5].astype(np.float32)
    sess = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    got = sess.run(None, {'keypoints_2d': x})[0]
    ref = lift_keypoints(model, x)
    np.testing.assert_allclose(np.linalg.norm(ref[:, 10], axis=-1), 0.55, atol=1e-5)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
