import copy

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
    wide = copy.deepcopy(cfg)  # Config.copy() is shallow: the fixture's cfg must not change
    wide.model.lifter.width = 48
    with pytest.raises(ValueError, match='shape'):
        init_lifter(wide, path)


def _walk_poses(num=3):
    return MocapProjectionDataset(split='test', clips=['walk']).arrays['keypoints_2d'][:num]


def test_lift_keypoints_names_the_bad_pose(model_and_ckpt):
    cfg, path, _ = model_and_ckpt
    model = init_lifter(cfg, path)
    kpts = _walk_poses()
    flat = kpts.copy()
    flat[2] = flat[2, :1]  # every joint at the pelvis of sample 2
    with pytest.raises(ValueError, match='sample 2 are degenerate'):
        lift_keypoints(model, flat)
    far = kpts.copy()
    far[1, 4, 0] = 2e6
    with pytest.raises(ValueError, match=r'sample 1 exceed \|1e\+06\| px'):
        lift_keypoints(model, far)
    scores = np.ones((3, 17), np.float32)
    scores[1, 7] = 1.5
    with pytest.raises(ValueError, match=r'\[0, 1\]; sample 1, joint 7 has 1.5'):
        lift_keypoints(model, kpts, scores=scores)
    scores[1, 7] = -0.1
    with pytest.raises(ValueError, match='sample 1, joint 7'):
        lift_keypoints(model, kpts, scores=scores)
    for bs in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match='batch_size must be an integer >= 1'):
            lift_keypoints(model, kpts, batch_size=bs)


@pytest.mark.parametrize('bad', [
    np.zeros((1, 17, 2), bool),
    np.zeros((1, 17, 2), np.complex64),
    np.full((1, 17, 2), '1.0'),
    torch.zeros(1, 17, 2, dtype=torch.bool),
    torch.zeros(1, 17, 2, dtype=torch.complex64),
])
def test_lift_keypoints_rejects_non_real_dtypes(model_and_ckpt, bad):
    cfg, path, _ = model_and_ckpt
    model = init_lifter(cfg, path)
    with pytest.raises(ValueError, match='must be real numbers'):
        lift_keypoints(model, bad)


def test_lift_keypoints_accepts_tensors_and_ints(model_and_ckpt):
    cfg, path, _ = model_and_ckpt
    model = init_lifter(cfg, path)
    kpts = np.round(_walk_poses())
    ref = lift_keypoints(model, kpts)
    grad = torch.from_numpy(kpts).requires_grad_(True)
    assert np.array_equal(lift_keypoints(model, grad), ref)
    assert np.array_equal(lift_keypoints(model, kpts.astype(np.int64)), ref)
    assert lift_keypoints(model, np.zeros((0, 17, 2))).shape == (0, 17, 3)


def test_lift_keypoints_refuses_non_finite_predictions(model_and_ckpt):
    cfg, path, _ = model_and_ckpt
    model = init_lifter(cfg, path)
    with torch.no_grad():
        next(model.lifter.parameters()).fill_(float('nan'))
    with pytest.raises(RuntimeError, match='NaN or inf for 3 of 3 pose'):
        lift_keypoints(model, _walk_poses())


def _model_forward(model, kpts, scores=None, batch_size=4096):
    """What lift_keypoints computed before it was optimised: eval mode, no_grad, the model's own
    ``forward(mode='tensor')`` on chunks of ``batch_size`` (BLAS rounds differently for other
    batch sizes, so the chunks must be the same)."""
    model.eval()
    out = []
    for start in range(0, len(kpts), batch_size):
        batch = {'keypoints_2d': torch.from_numpy(
            np.asarray(kpts[start:start + batch_size], np.float32))}
        if scores is not None:
            batch['keypoint_scores'] = torch.from_numpy(
                np.asarray(scores[start:start + batch_size], np.float32))
        with torch.no_grad():
            out.append(model(batch, mode='tensor').float().numpy())
    return np.concatenate(out)


@pytest.mark.parametrize('name', ['unsup3d', 'unsup3d-conf'])
def test_lift_keypoints_equals_the_models_forward_on_zoo_models(name):
    """The optimised path (inference_mode, flags-only eval check, one-pass checks) returns what
    the model computes, within 1e-6 relative (measured: bit-identical on CPU)."""
    from mmunsup3d.apis import init_lifter as init
    model = init(name)
    kpts = MocapProjectionDataset(split='test').arrays['keypoints_2d']
    scores = np.random.default_rng(0).uniform(0.0, 1.0, kpts.shape[:2]).astype(np.float32) \
        if model.use_scores else None
    scale = np.abs(_model_forward(model, kpts, scores)).max()
    for batch_size in (4096, 7):
        ref = _model_forward(model, kpts, scores, batch_size)
        out = lift_keypoints(model, kpts, scores, batch_size=batch_size)
        assert out.dtype == np.float32 and out.shape == ref.shape
        assert np.abs(out - ref).max() <= 1e-6 * scale
    for i in range(3):  # single poses, as a live pipeline sends them
        one = lift_keypoints(model, kpts[i:i + 1], None if scores is None else scores[i:i + 1])
        assert np.abs(one - _model_forward(model, kpts[i:i + 1], None if scores is None else
                                           scores[i:i + 1])).max() <= 1e-6 * scale


def test_lift_keypoints_puts_every_submodule_in_eval_mode(model_and_ckpt):
    cfg, path, _ = model_and_ckpt
    model = init_lifter(cfg, path)
    kpts = _walk_poses(4)
    ref = lift_keypoints(model, kpts)
    for part in (model, model.lifter.blocks[0]):  # the whole model, or one block only
        part.train()
        out = lift_keypoints(model, kpts)
        assert not any(m.training for m in model.modules())
        assert np.array_equal(out, ref)
