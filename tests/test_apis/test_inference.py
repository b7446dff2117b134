import numpy as np
import pytest
import torch
from mmengine.runner import save_checkpoint

from helpers import tiny_cfg
from mmunsup3d.apis import init_lifter, lift_keypoints
from mmunsup3d.datasets import MocapProjectionDataset


@pytest.fixture(scope='module')
def model_and_ckpt(tmp_path_factory):
    work = tmp_path_factory.mktemp('api')
    cfg = tiny_cfg(str(work))
    path = str(work / 'ckpt.pth')
    from mmpose.registry import MODELS
    full = MODELS.build(cfg.model)  # with discriminator, as a training checkpoint has it
    torch.manual_seed(0)
    for p in full.parameters():
        p.data.normal_(0, 0.1)
    save_checkpoint({'state_dict': full.state_dict(), 'meta': {}}, path)
    return cfg, path, full


def test_init_lifter_loads_weights_without_discriminator(model_and_ckpt):
    cfg, path, full = model_and_ckpt
    model = init_lifter(cfg, path)
    assert model.discriminator is None and not model.training
    for key, value in model.lifter.state_dict().items():
        assert torch.equal(value, full.lifter.state_dict()[key])


def test_lift_keypoints_matches_model_and_invariances(model_and_ckpt):
    cfg, path, _ = model_and_ckpt
    model = init_lifter(cfg, path)
    kpts = MocapProjectionDataset(split='test', clips=['walk']).arrays['keypoints_2d'][:10]
    out = lift_keypoints(model, kpts)
    assert out.shape == (10, 17, 3) and out.dtype == np.float32
    assert np.allclose(out[:, 0], 0.0)
    # Normalisation is done inside: image translation and zoom change nothing.
    out2 = lift_keypoints(model, kpts * 1.7 + np.array([30.0, -80.0], np.float32))
    assert np.allclose(out, out2, atol=1e-4)
    # Batched processing equals one-by-one.
    out3 = lift_keypoints(model, kpts, batch_size=3)
    assert np.allclose(out, out3, atol=1e-5)


@pytest.mark.parametrize('bad, match', [
    (np.zeros((2, 16, 2)), r'\(N, 17, 2\)'),
    (np.zeros((17, 2)), r'\(N, 17, 2\)'),
    (np.full((1, 17, 2), np.nan), 'NaN or inf'),
    (np.full((1, 17, 2), np.inf), 'NaN or inf'),
])
def test_lift_keypoints_rejects_bad_input(model_and_ckpt, bad, match):
    cfg, path, _ = model_and_ckpt
    model = init_lifter(cfg, path)
    with pytest.raises(ValueError, match=match):
        lift_keypoints(model, bad)
    with pytest.raises(ValueError, match='scores must have shape'):
        lift_keypoints(model, np.random.rand(2, 17, 2) * 100, scores=np.ones((2, 16)))


def test_init_lifter_errors(model_and_ckpt, tmp_path):
    cfg, path, _ = model_and_ckpt
    with pytest.raises(FileNotFoundError):
        init_lifter(str(tmp_path / 'nope.py'))
    with pytest.raises(FileNotFoundError):
        init_lifter(cfg, str(tmp_path / 'nope.pth'))
    wide = cfg.copy()
    wide.model.lifter.width = 48
    with pytest.raises(ValueError, match='shape'):
        init_lifter(wide, path)
