"""Issue-4 options: learned elevation prior, confidence-aware input, 2D domain adapter."""
import copy
import math

import numpy as np
import pytest
import torch

from mmpose.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from mmunsup3d.apis.keypoint_convert import coco_to_h36m
from mmunsup3d.models import (coco_to_h36m_matrix, euler_to_rotmat, normalize_2d_masked,
                              bone_asymmetry, retilt_rotations, rotate, torso_elevation)
from test_unsup3d_lifter import CYCLE_LOSSES, fake_batch, small_model_cfg


def _wrappers(model, groups):
    ctor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='Unsup3DOptimWrapperConstructor',
        optim_wrapper_cfg={
            k: dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3), modules=v)
            for k, v in groups.items()}))
    return ctor(model)


def _changed(before, module):
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


# ----------------------------------------------------------------------------- geometry
def test_retilt_rotations_identity_and_upright_axis():
    e = torch.tensor([0.3, -0.2])
    zero = torch.zeros(2)
    eye = retilt_rotations(e, e, zero, zero)
    assert torch.allclose(eye, torch.eye(3).expand(2, 3, 3), atol=1e-6)
    # A camera looking down by e sees world-up as (0, -cos e, -sin e); the un-tilt makes it
    # (0, -1, 0), the azimuth turn keeps it, the re-tilt to e' gives (0, -cos e', -sin e').
    e_from, e_to, az = torch.tensor([0.25]), torch.tensor([-0.1]), torch.tensor([1.3])
    up = torch.stack([torch.zeros(1), -torch.cos(e_from), -torch.sin(e_from)], -1)  # (1, 3)
    rot = retilt_rotations(e_from, e_to, az)
    new_up = rotate(up[:, None], rot)[:, 0]
    expected = torch.tensor([[0.0, -math.cos(-0.1), -math.sin(-0.1)]])
    assert torch.allclose(new_up, expected, atol=1e-6)
    assert torch.allclose(rot @ rot.transpose(-1, -2), torch.eye(3)[None], atol=1e-6)
    # Equals the explicit composition.
    composed = euler_to_rotmat(az, e_to, torch.zeros(1)) @ euler_to_rotmat(
        torch.zeros(1), -e_from, torch.zeros(1))
    assert torch.allclose(rot, composed)


def test_normalize_2d_masked_ignores_missing_joints():
    g = torch.Generator().manual_seed(0)
    pose = torch.randn(3, 17, 2, generator=g) * 40 + 300
    valid = torch.ones(3, 17, dtype=torch.bool)
    valid[:, [3, 9]] = False
    garbage = pose.clone()
    garbage[:, [3, 9]] = 0.0  # missing joints stored as (0, 0) px
    a, sa = normalize_2d_masked(pose, valid, c=10.0)
    b, sb = normalize_2d_masked(garbage, valid, c=10.0)
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(sa, sb)
    assert (b[:, [3, 9]] == 0).all()
    kept = b[valid].view(3, 15, 2)
    assert torch.allclose(kept.mean(1), torch.zeros(3, 2), atol=1e-6)
    rms = kept.pow(2).sum(-1).mean(-1).sqrt()
    assert torch.allclose(rms, torch.full((3, ), 0.065), atol=1e-6)


# ----------------------------------------------------------------------------- elevation prior
def test_elevation_predictor_range_init_and_errors():
    net = MODELS.build(dict(type='ElevationPredictor', width=16, elevation_range_deg=(0, 40)))
    out = net(torch.randn(32, 17, 2) * 0.1)
    assert out.shape == (32, )
    assert (out >= 0).all() and (out <= math.radians(40)).all()
    # Starts at a quarter of the range for every pose (10 degrees here).
    assert torch.allclose(out, torch.full_like(out, math.radians(10)), atol=math.radians(1))
    big = net(torch.randn(4, 17, 2) * 1e4)
    assert (big >= 0).all() and (big <= math.radians(40) + 1e-6).all()
    with pytest.raises(ValueError, match='high > low'):
        MODELS.build(dict(type='ElevationPredictor', elevation_range_deg=(10, 0)))
    with pytest.raises(ValueError, match='outside'):
        MODELS.build(dict(type='ElevationPredictor', elevation_range_deg=(0, 10),
                          init_elevation_deg=20))
    with pytest.raises(ValueError, match='17 joints x 2 channels'):
        net(torch.randn(2, 16, 2))


def _elevation_model():
    return MODELS.build(small_model_cfg(
        elevation_net=dict(type='ElevationPredictor', width=16, elevation_range_deg=(0, 40)),
        camera_sampler=dict(type='ElevationRetiltCameraSampler', max_azimuth_deg=140.0,
                            max_elevation_deg=20.0, max_roll_deg=None),
        cycle_losses=CYCLE_LOSSES + [dict(type='ElevationRegressionLoss', loss_weight=1.0)]))


def test_elevation_net_and_retilt_sampler_go_together():
    with pytest.raises(ValueError, match='elevation_net and ElevationRetiltCameraSampler'):
        MODELS.build(small_model_cfg(
            elevation_net=dict(type='ElevationPredictor', width=16)))
    with pytest.raises(ValueError, match='elevation_net and ElevationRetiltCameraSampler'):
        MODELS.build(small_model_cfg(camera_sampler=dict(type='ElevationRetiltCameraSampler')))


def test_elevation_prior_rotations_and_gradients():
    torch.manual_seed(0)
    model = _elevation_model()
    x = model.normalize(fake_batch(64)['inputs']['keypoints_2d'])
    rot, pred = model.sample_cameras(x)
    assert rot.shape == (64, 3, 3) and pred.shape == (64, ) and pred.requires_grad
    assert not rot.requires_grad  # built from the detached predictions
    assert torch.allclose(rot @ rot.transpose(-1, -2), torch.eye(3).expand(64, 3, 3), atol=1e-5)
    # The first column of the un-tilt (x axis) is untouched by elevation: with azimuth and roll
    # switched off the rotation is a pure x-rotation by (target - predicted) elevation.
    sampler = model.camera_sampler
    sampler.max_azimuth_deg = sampler.max_elevation_deg = sampler.max_roll_deg = 0.0
    rot, _ = model.sample_cameras(x)
    assert torch.allclose(rot[:, 0], torch.tensor([1.0, 0, 0]).expand(64, 3), atol=1e-6)
    # Only the predictor's own regression loss reaches it; the rotations use its detached
    # output, so no adversarial or consistency gradient can tilt the orbit axis.
    sampler.max_azimuth_deg, sampler.max_elevation_deg, sampler.max_roll_deg = 140.0, 20.0, None
    losses, _ = model.generator_losses(fake_batch(64)['inputs'])
    assert 'elevation_deg' in losses and 0 <= float(losses['elevation_deg']) <= 40
    (losses['loss_2d'] + losses['loss_3d'] + losses['loss_adv']).backward(retain_graph=True)
    assert all(p.grad is None for p in model.elevation_net.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.lifter.parameters())
    model.zero_grad()
    losses['loss_elevation'].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.elevation_net.parameters())
    assert all(p.grad is None for p in model.lifter.parameters())
    assert all(p.grad is None for p in model.discriminator.parameters())


def test_torso_elevation_hand_computed_and_mirror():
    e = 0.3
    pose = torch.zeros(1, 17, 3)
    pose[0, 8] = torch.tensor([0.0, -math.cos(e), -math.sin(e)]) * 0.5  # camera looks down
    assert torso_elevation(pose).item() == pytest.approx(e, abs=1e-6)
    mirrored = pose * torch.tensor([1.0, 1.0, -1.0])
    assert torso_elevation(mirrored).item() == pytest.approx(-e, abs=1e-6)
    # Orbiting about the upright axis (retilt with the same elevation) keeps the elevation;
    # orbiting about the camera's own y axis does not.
    for az in (0.5, 1.0, 2.0):
        turned = rotate(pose, retilt_rotations(torch.tensor([e]), torch.tensor([e]),
                                               torch.tensor([az])))
        assert torso_elevation(turned).item() == pytest.approx(e, abs=1e-6)
    naive = rotate(pose, euler_to_rotmat(torch.tensor([1.0]), torch.zeros(1), torch.zeros(1)))
    assert abs(torso_elevation(naive).item() - e) > 0.1


def test_elevation_prior_train_step_shares_lifter_optimizer():
    torch.manual_seed(0)
    model = _elevation_model()
    wrappers = _wrappers(model, dict(lifter=['lifter', 'elevation_net'],
                                     discriminator=['discriminator']))
    before_e = copy.deepcopy(model.elevation_net.state_dict())
    log = model.train_step(fake_batch(), wrappers)
    assert 'elevation_deg' in log and float(log['loss']) == pytest.approx(
        sum(float(v) for k, v in log.items() if k.startswith('loss_')), rel=1e-5)
    assert _changed(before_e, model.elevation_net)
    # A discriminator step leaves the elevation net and the lifter untouched.
    real, fake = model.generator_losses(fake_batch()['inputs'])[1]['discriminator']
    model.zero_grad()
    model.discriminator_losses('discriminator', real.detach(), fake)['loss_disc'].backward()
    assert all(p.grad is None for p in model.elevation_net.parameters())
    assert all(p.grad is None for p in model.lifter.parameters())


# ----------------------------------------------------------------------------- scores
def _conf_model(**kw):
    """Confidence-aware small model; ``kw`` adds model parts (``keypoint_noise``, ``flip``)."""
    return MODELS.build(small_model_cfg(
        lifter=dict(type='ResidualLifter', width=64, num_blocks=2, dropout=0.0, in_channels=3),
        **kw))


def test_use_scores_follows_the_lifter_channels():
    # Replaces the old use_scores / in_channels mismatch errors: the flag is now read off the
    # lifter, so the two cannot disagree; the old argument names its replacement.
    assert _conf_model().use_scores
    assert not MODELS.build(small_model_cfg()).use_scores
    assert not MODELS.build(small_model_cfg(lifter=dict(type='FlatDepthLifter'))).use_scores
    with pytest.raises(TypeError,
                       match='"use_scores" was replaced by the lifter\'s in_channels=3'):
        MODELS.build(small_model_cfg(use_scores=True))
    with pytest.raises(AttributeError):
        _conf_model().use_scores = False
    # A 2-channel lifter really gets 2 channels, a 3-channel one the scores as the third.
    seen = []
    model = _conf_model()
    model.lifter.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x, scores = torch.zeros(2, 17, 2), torch.full((2, 17), 0.25)
    model.lift(x, scores)
    assert seen[-1].shape == (2, 17, 3) and torch.equal(seen[-1][..., 2], scores)
    plain = MODELS.build(small_model_cfg())
    plain.lifter.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    plain.lift(x, scores)
    assert seen[-1].shape == (2, 17, 2)


def test_scores_change_the_prediction_and_default_to_one():
    torch.manual_seed(0)
    model = _conf_model().eval()
    kpts = fake_batch(4)['inputs']['keypoints_2d']
    ones = model.predict_3d(kpts)
    assert torch.allclose(ones, model.predict_3d(kpts, torch.ones(4, 17)))
    low = torch.ones(4, 17)
    low[:, 13] = 0.0
    assert not torch.allclose(ones, model.predict_3d(kpts, low))
    with pytest.raises(ValueError, match='keypoint_scores must have shape'):
        model.predict_3d(kpts, torch.ones(4, 16))
    # A 2-channel model ignores scores.
    plain = MODELS.build(small_model_cfg()).eval()
    assert torch.allclose(plain.predict_3d(kpts), plain.predict_3d(kpts, low))


def test_corrupt_is_a_noop_without_config_and_draws_nothing():
    model = _conf_model()
    assert model.keypoint_noise is None and model.flip is None
    kpts = fake_batch(8)['inputs']['keypoints_2d']
    x = model.normalize(kpts)
    state = torch.get_rng_state()
    y, s, flip = model.real_poses(kpts)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(y, x) and torch.equal(s, torch.ones(8, 17)) and not flip.any()
    given = torch.rand(8, 17, dtype=torch.float64)
    state = torch.get_rng_state()
    y, s, _ = model.real_poses(kpts, given)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(y, x) and s.dtype == x.dtype and torch.equal(s, given.to(x.dtype))


def test_corrupt_noise_scores_and_drops():
    torch.manual_seed(0)
    model = _conf_model(keypoint_noise=dict(type='KeypointNoise2D', std=0.05, drop_prob=0.2))
    kpts = fake_batch(256)['inputs']['keypoints_2d']
    x = model.normalize(kpts)
    state = torch.get_rng_state()
    raw, s = model.keypoint_noise(x, torch.full((256, 17), 0.5))
    y = model.normalize(raw)  # the noise leaves the poses unnormalised; the model re-normalises
    # real_poses is exactly normalise -> noise -> re-normalise (same draw, same result).
    torch.set_rng_state(state)
    y_model, s_model, _ = model.real_poses(kpts, torch.full((256, 17), 0.5))
    assert torch.equal(y_model, y) and torch.equal(s_model, s)
    assert y.shape == x.shape and s.shape == (256, 17)
    assert (s <= 0.5 + 1e-6).all() and (s >= 0).all()  # scaled by the incoming scores
    dropped = s == 0
    assert 0.1 < dropped[:, 1:].float().mean() < 0.3 and not dropped[:, 0].any()
    # A dropped joint sits on its parent (knee 2 -> hip 1), after the common re-normalisation.
    rows = torch.nonzero(dropped[:, 2] & ~dropped[:, 1]).flatten()
    assert len(rows) and torch.allclose(y[rows, 2], y[rows, 1], atol=1e-6)
    # Still root-centred with the model's normalisation, and actually perturbed.
    assert torch.allclose(y[:, 0], torch.zeros(256, 2), atol=1e-7)
    assert (y - x).abs().mean() > 1e-3
    # Larger errors get lower scores (no drops here, so the scale barely changes).
    model.keypoint_noise.drop_prob = 0.0
    raw, s = model.keypoint_noise(x, torch.ones(256, 17))
    y = model.normalize(raw)
    # Undo the re-normalisation's common scale change before measuring each joint's error.
    alpha = (y * x).sum((1, 2)) / (y * y).sum((1, 2))
    err = (y * alpha[:, None, None] - x).norm(dim=-1)[:, 1:].flatten()
    assert np.corrcoef(err.numpy(), s[:, 1:].flatten().numpy())[0, 1] < -0.3
    assert (s[:, 0] == 1).all()


def test_confidence_aware_train_step_uses_scores_from_the_batch():
    torch.manual_seed(0)
    model = _conf_model(keypoint_noise=dict(type='KeypointNoise2D', std=0.03, drop_prob=0.05))
    wrappers = _wrappers(model, dict(lifter=['lifter'], discriminator=['discriminator']))
    data = fake_batch(16)
    data['inputs']['keypoint_scores'] = torch.rand(16, 17)
    before = copy.deepcopy(model.lifter.state_dict())
    log = model.train_step(data, wrappers)
    assert all(torch.isfinite(v) for v in log.values())
    assert _changed(before, model.lifter)
    # Flipping permutes scores with the joints.
    flipping = _conf_model(flip=dict(type='RandomFlip2D', flip_prob=0.5))
    mask = torch.tensor([True, False])
    sc = torch.arange(34, dtype=torch.float32).view(2, 17)
    _, flipped, used = flipping.real_poses(data['inputs']['keypoints_2d'][:2], sc, mask)
    assert torch.equal(used, mask)
    assert flipped[0, 1] == sc[0, 4] and flipped[0, 11] == sc[0, 14]
    assert torch.equal(flipped[1], sc[1])


# ----------------------------------------------------------------------------- adapter
def test_adapter_starts_as_the_joint_name_rule():
    adapter = MODELS.build(dict(type='PoseDomainAdapter2D', width=16))
    g = torch.Generator().manual_seed(0)
    coco = torch.randn(5, 17, 2, generator=g)
    rule, _ = coco_to_h36m(coco.numpy().astype(np.float64))
    out = adapter(coco, torch.ones(5, 17))
    assert torch.allclose(out, torch.from_numpy(rule).float(), atol=1e-5)
    assert np.allclose(coco_to_h36m_matrix().sum(1), 1.0)  # affine: translations carry over
    _, res = adapter(coco, return_residual=True)
    assert res.abs().max() == 0
    with pytest.raises(ValueError, match=r'\(B, 17, 2\)'):
        adapter(torch.randn(2, 16, 2))
    with pytest.raises(ValueError, match='coco_to_h36m'):
        MODELS.build(dict(type='PoseDomainAdapter2D', in_keypoints=16))


def _adapter_model():
    return MODELS.build(small_model_cfg(
        adapter=dict(type='PoseDomainAdapter2D', width=16, num_layers=1),
        adapter_gan_loss=dict(type='GANLoss', loss_name='loss_adapter'),
        adapter_reg_loss=dict(type='AdapterResidualLoss')))


def _coco_batch(batch=16, extra=12):
    data = fake_batch(batch)
    coco = fake_batch(extra, seed=5)['inputs']['keypoints_2d']
    scores = torch.ones(extra, 17)
    scores[0, 3] = 0.0  # a missing ear
    coco[0, 3] = 0.0
    data['inputs']['extra_keypoints_2d'] = coco
    data['inputs']['extra_keypoint_scores'] = scores
    return data


def test_adapter_needs_a_discriminator():
    with pytest.raises(ValueError, match='give a discriminator and its gan_loss'):
        MODELS.build(small_model_cfg(discriminator=None, gan_loss=None,
                                     adapter=dict(type='PoseDomainAdapter2D')))
    with pytest.raises(ValueError, match='give a discriminator and its gan_loss'):
        MODELS.build(small_model_cfg(gan_loss=None, adapter=dict(type='PoseDomainAdapter2D')))


def test_adapter_losses_gradients_and_fake_set():
    torch.manual_seed(0)
    model = _adapter_model()
    data = _coco_batch()
    losses, disc_batches = model.generator_losses(data['inputs'])
    real, fake = disc_batches['discriminator']
    assert {'loss_adapter', 'loss_adapter_reg'} <= set(losses)
    # D's fakes: projections of main + adapted poses, then the adapted poses themselves.
    assert fake.shape == (16 + 12 + 12, 17, 2) and real.shape == (16, 17, 2)
    # The adapter's adversarial term reaches the adapter only (the lifter sees adapted poses
    # detached), never the discriminator.
    model.zero_grad()
    losses['loss_adapter'].backward(retain_graph=True)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.adapter.parameters())
    assert all(p.grad is None for p in model.lifter.parameters())
    assert all(p.grad is None for p in model.discriminator.parameters())
    # The cycle on extra poses trains the lifter but not the adapter.
    model.zero_grad()
    losses['loss_3d'].backward()
    assert all(p.grad is None for p in model.adapter.parameters())
    assert any(p.grad is not None for p in model.lifter.parameters())
    # Without extra poses in the batch the adapter is simply idle.
    plain, disc2 = model.generator_losses(fake_batch()['inputs'])
    assert 'loss_adapter' not in plain and disc2['discriminator'][1].shape == (16, 17, 2)


def test_adapter_train_step_and_discriminator_step_isolation():
    torch.manual_seed(0)
    model = _adapter_model()
    wrappers = _wrappers(model, dict(lifter=['lifter', 'adapter'],
                                     discriminator=['discriminator']))
    before_a = copy.deepcopy(model.adapter.state_dict())
    before_d = copy.deepcopy(model.discriminator.state_dict())
    log = model.train_step(_coco_batch(), wrappers)
    assert {'loss_adapter', 'loss_adapter_reg', 'loss_disc'} <= set(log)
    assert _changed(before_a, model.adapter) and _changed(before_d, model.discriminator)
    real, fake = model.generator_losses(_coco_batch()['inputs'])[1]['discriminator']
    model.zero_grad()
    model.discriminator_losses('discriminator', real.detach(), fake)['loss_disc'].backward()
    assert all(p.grad is None for p in model.adapter.parameters())
    assert all(p.grad is None for p in model.lifter.parameters())


# ----------------------------------------------------------------------------- symmetry prior
def test_bone_asymmetry_hand_computed_and_gradient():
    pose = torch.zeros(1, 17, 3)
    # Left thigh (4-5) of length 2, right thigh (1-2) of length 1; all other bones of length 0
    # on both sides except the hips (0-4 and 0-1), length 1 each.
    pose[0, 4] = torch.tensor([1.0, 0, 0])
    pose[0, 1] = torch.tensor([-1.0, 0, 0])
    pose[0, 5] = pose[0, 4] + torch.tensor([0, 2.0, 0])
    pose[0, 2] = pose[0, 1] + torch.tensor([0, 1.0, 0])
    pose[0, 6] = pose[0, 5]
    pose[0, 3] = pose[0, 2]
    # Thigh pair: |2 - 1| / 1.5; every other pair 0 (shoulder/arm joints all at 0 -> 0/eps).
    assert bone_asymmetry(pose).item() == pytest.approx((1.0 / 1.5) / 6, rel=1e-5)
    sym = pose.clone()
    sym[0, 5] = sym[0, 4] + torch.tensor([0, 1.0, 0])
    sym[0, 6] = sym[0, 5]
    assert bone_asymmetry(sym).item() == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(bone_asymmetry(pose * 3.0), bone_asymmetry(pose))  # scale-free
    x = pose.clone().requires_grad_(True)
    bone_asymmetry(x).sum().backward()
    assert x.grad[0, 5].abs().sum() > 0


def test_symmetry_loss_is_off_by_default_and_reaches_only_the_lifter():
    torch.manual_seed(0)
    plain = MODELS.build(small_model_cfg())
    assert 'loss_symmetry' not in plain.generator_losses(fake_batch()['inputs'])[0]
    model = MODELS.build(small_model_cfg(
        cycle_losses=CYCLE_LOSSES + [dict(type='BoneSymmetryLoss', loss_weight=1.0)]))
    losses, _ = model.generator_losses(fake_batch()['inputs'])
    losses['loss_symmetry'].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.lifter.parameters())
    assert all(p.grad is None for p in model.discriminator.parameters())
