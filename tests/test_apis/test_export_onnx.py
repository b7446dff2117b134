"""ONNX export of the committed lifter matches :func:`lift_keypoints`."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import yaml

from helpers import REPO, committed_weights
from mmunsup3d.apis import init_lifter, lift_keypoints
from mmunsup3d.datasets import MocapProjectionDataset

ort = pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')


def _committed():
    index = yaml.safe_load(open(osp.join(REPO, 'model-index.yml')))
    for rel in index['Import']:
        for entry in yaml.safe_load(open(osp.join(REPO, rel)))['Models']:
            if osp.isfile(committed_weights(entry)):
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

    model = init_lifter(osp.join(REPO, entry['Config']), committed_weights(entry))
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
    ckpt = committed_weights(entry)
    out = mod.export_onnx(cfg, ckpt, str(tmp_path / 'scaled.onnx'))
    model = init_lifter(cfg, ckpt)
    x = MocapProjectionDataset(split='test').arrays['keypoints_2d'][:5].astype(np.float32)
    sess = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    got = sess.run(None, {'keypoints_2d': x})[0]
    ref = lift_keypoints(model, x)
    np.testing.assert_allclose(np.linalg.norm(ref[:, 10], axis=-1), 0.55, atol=1e-5)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- every zoo model
def _export_module():
    from helpers import load_tool
    return load_tool('deployment', 'export_onnx.py')


def _zoo_entries():
    index = yaml.safe_load(open(osp.join(REPO, 'model-index.yml')))
    return [entry for rel in index['Import']
            for entry in yaml.safe_load(open(osp.join(REPO, rel)))['Models']
            if osp.isfile(committed_weights(entry))]


_ZOO = _zoo_entries()


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """Each committed zoo model exported once: name -> (model, onnxruntime session)."""
    mod = _export_module()
    out_dir = tmp_path_factory.mktemp('zoo_onnx')
    result = {}
    for entry in _ZOO:
        cfg, ckpt = osp.join(REPO, entry['Config']), committed_weights(entry)
        path = mod.export_onnx(cfg, ckpt, str(out_dir / f'{entry["Name"]}.onnx'))
        result[entry['Name']] = (init_lifter(cfg, ckpt),
                                 ort.InferenceSession(path, providers=['CPUExecutionProvider']))
    return result


def test_zoo_has_both_input_layouts():
    # The parity test below covers 2- and 3-channel lifters only while the zoo holds both.
    from mmengine.config import Config
    channels = {Config.fromfile(osp.join(REPO, e['Config'])).model.lifter.in_channels
                for e in _ZOO}
    assert {2, 3} <= channels


@pytest.mark.parametrize('name', [e['Name'] for e in _ZOO])
def test_every_zoo_model_matches_lift_keypoints(exported, name):
    model, sess = exported[name]
    mod = _export_module()
    use_scores = model.lifter.in_channels == 3
    names = [i.name for i in sess.get_inputs()]
    assert names == (['keypoints_2d', 'keypoint_scores'] if use_scores else ['keypoints_2d'])
    assert all(not isinstance(i.shape[0], int) for i in sess.get_inputs())  # dynamic batch
    kpts = MocapProjectionDataset(split='test').arrays['keypoints_2d'].astype(np.float32)
    rng = np.random.RandomState(0)
    for batch in (1, 37):
        x = kpts[100:100 + batch]
        scores = rng.uniform(0.0, 1.0, x.shape[:2]).astype(np.float32)
        feed = {'keypoints_2d': x}
        if use_scores:
            feed['keypoint_scores'] = scores
        got = sess.run(None, feed)[0]
        assert got.shape == (batch, 17, 3)
        ref = lift_keypoints(model, x, scores if use_scores else None)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
        # The checked runner: same result; without scores a 3-channel graph gets ones, as
        # lift_keypoints does.
        np.testing.assert_allclose(mod.run_onnx(sess, x, scores), lift_keypoints(model, x, scores),
                                   atol=1e-4, rtol=0)
        np.testing.assert_allclose(mod.run_onnx(sess, x), lift_keypoints(model, x), atol=1e-4,
                                   rtol=0)
    if use_scores:  # the scores really reach the lifter in the graph
        assert np.abs(mod.run_onnx(sess, x, scores) - mod.run_onnx(sess, x)).max() > 1e-3


@pytest.mark.parametrize('name', [e['Name'] for e in _ZOO])
def test_empty_batch_gives_empty_result(exported, name):
    model, sess = exported[name]
    feed = {i.name: np.zeros((0, 17, 2) if i.name == 'keypoints_2d' else (0, 17), np.float32)
            for i in sess.get_inputs()}
    out = sess.run(None, feed)[0]  # the graph itself (no Reshape to [0, -1])
    assert out.shape == (0, 17, 3) and out.dtype == np.float32
    out = _export_module().run_onnx(sess, np.zeros((0, 17, 2), np.float32))
    assert out.shape == (0, 17, 3) and out.dtype == np.float32
    assert lift_keypoints(model, np.zeros((0, 17, 2), np.float32)).shape == (0, 17, 3)


def test_run_onnx_rejects_bad_input(exported):
    mod = _export_module()
    conf = [n for n, (m, _) in exported.items() if m.lifter.in_channels == 3][0]
    _, sess = exported[conf]
    x = np.full((2, 17, 2), 500.0, np.float32) + np.arange(17)[None, :, None]
    with pytest.raises(ValueError, match=r'keypoints must have shape \(N, 17, 2\) \(pixels\), '
                                         r'got \(2, 16, 2\)'):
        mod.run_onnx(sess, x[:, :16])
    with pytest.raises(ValueError, match=r'scores must have shape \(2, 17\), got \(2, 16\)'):
        mod.run_onnx(sess, x, np.ones((2, 16)))
    with pytest.raises(ValueError, match=r'scores must lie in \[0, 1\], got values in '
                                         r'\[0, 1\.5\]'):
        mod.run_onnx(sess, x, np.concatenate([np.zeros((1, 17)), np.full((1, 17), 1.5)]))
    with pytest.raises(ValueError, match='keypoints contain NaN or inf'):
        mod.run_onnx(sess, np.where(np.arange(17)[None, :, None] == 3, np.nan, x))
    with pytest.raises(ValueError, match='keypoints must be real numbers, got dtype <U1'):
        mod.run_onnx(sess, np.full((1, 17, 2), 'a'))
