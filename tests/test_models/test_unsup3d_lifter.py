import copy

import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict

from mmpose.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from mmpose.structures import PoseDataSample
from mmunsup3d.models.losses import mean_joint_distance

#: The paper's two cycle losses, weight 1 each (``loss_2d``, ``loss_3d``).
CYCLE_LOSSES = [dict(type='ReprojectionConsistencyLoss', loss_weight=1.0),
                dict(type='RotationConsistencyLoss', loss_weight=1.0)]


def small_model_cfg(**kw):
    """A small lifter + 2D discriminator: loss_2d, loss_3d and loss_adv at weight 1."""
    cfg = dict(
        type='Unsup3DLifter',
        lifter=dict(type='ResidualLifter', width=64, num_blocks=2, dropout=0.0),
        discriminator=dict(type='PoseDiscriminator2D', width=32, num_blocks=1),
        cycle_losses=copy.deepcopy(CYCLE_LOSSES),
        gan_loss=dict(type='GANLoss', gan_type='vanilla', loss_weight=1.0))
    cfg.update(kw)
    return cfg


def fake_batch(batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(batch, 17, 3, generator=g) * 0.3
    pose[..., 2] += 5.0
    pix = pose[..., :2] / pose[..., 2:] * 1000 + 500
    return {'inputs': {'keypoints_2d': pix}}


def build_wrappers(model):
    ctor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type='Unsup3DOptimWrapperConstructor',
            optim_wrapper_cfg=dict(
                lifter=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3)),
                discriminator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3)))))
    return ctor(model)


def test_residual_lifter_shapes_and_errors():
    lifter = MODELS.build(dict(type='ResidualLifter', width=32, num_blocks=3))
    assert lifter(torch.randn(5, 17, 2)).shape == (5, 17)
    assert lifter(torch.randn(5, 34, 1)).shape == (5, 17)  # MMPose's (B, K*C, T) packing
    assert len(lifter.blocks) == 3
    with pytest.raises(ValueError, match='17 joints x 2 channels'):
        lifter(torch.randn(5, 16, 2))
    backbone = MODELS.build(dict(type='ResidualLifter', width=32, as_backbone=True))
    feats = backbone(torch.randn(5, 34, 1))
    assert isinstance(feats, tuple) and feats[0].shape == (5, 32, 1)


def test_discriminator_shapes_and_no_batchnorm():
    disc = MODELS.build(dict(type='PoseDiscriminator2D', width=32, num_blocks=2))
    assert disc(torch.randn(6, 17, 2)).shape == (6, )
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in disc.modules())
    temporal = MODELS.build(dict(type='PoseDiscriminator2D', width=32, num_frames=2))
    assert temporal(torch.randn(6, 2, 17, 2)).shape == (6, )
    with pytest.raises(ValueError, match='expects 68 inputs'):
        temporal(torch.randn(6, 17, 2))


def test_optim_wrapper_dict_per_submodule():
    model = MODELS.build(small_model_cfg())
    wrappers = build_wrappers(model)
    assert isinstance(wrappers, OptimWrapperDict)
    assert set(wrappers.keys()) == {'lifter', 'discriminator'}
    lifter_params = {id(p) for p in model.lifter.parameters()}
    opt_params = {id(p) for g in wrappers['lifter'].optimizer.param_groups for p in g['params']}
    assert lifter_params == opt_params


def test_optim_constructor_unknown_module():
    model = MODELS.build(small_model_cfg())
    ctor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type='Unsup3DOptimWrapperConstructor',
             optim_wrapper_cfg=dict(
                 generator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3)))))
    with pytest.raises(AttributeError, match="no sub-module.*'generator'"):
        ctor(model)


def test_train_step_updates_both_networks_and_logs_losses():
    torch.manual_seed(0)
    model = MODELS.build(small_model_cfg())
    wrappers = build_wrappers(model)
    before_l = copy.deepcopy(model.lifter.state_dict())
    before_d = copy.deepcopy(model.discriminator.state_dict())
    log = model.train_step(fake_batch(), wrappers)
    assert {'loss', 'loss_2d', 'loss_3d', 'loss_adv', 'loss_disc'} <= set(log)
    assert all(torch.isfinite(v) for v in log.values())
    changed = lambda a, b: any(not torch.equal(a[k], b[k]) for k in a)  # noqa: E731
    assert changed(before_l, model.lifter.state_dict())
    assert changed(before_d, model.discriminator.state_dict())
    # update_params zeroes gradients: nothing is left over for the next step.
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_generator_loss_leaves_discriminator_without_gradient():
    model = MODELS.build(small_model_cfg())
    losses, disc_batches = model.generator_losses(fake_batch()['inputs'])
    assert set(disc_batches) == {'discriminator'}
    real, fake = disc_batches['discriminator']
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.lifter.parameters())
    assert all(p.requires_grad for p in model.discriminator.parameters())  # restored
    assert not fake.requires_grad and fake.shape == (16, 17, 2)
    assert not real.requires_grad and real.shape == (16, 17, 2)


def test_discriminator_step_leaves_lifter_untouched():
    model = MODELS.build(small_model_cfg())
    real, fake = model.generator_losses(fake_batch()['inputs'])[1]['discriminator']
    d_losses = model.discriminator_losses('discriminator', real.detach(), fake)
    d_losses['loss_disc'].backward()
    assert all(p.grad is None for p in model.lifter.parameters())
    assert any(p.grad is not None for p in model.discriminator.parameters())


def test_cycle_is_consistent_for_a_perfect_lifter():
    """With no rotation the cycle must be exactly consistent, whatever the lifter predicts."""
    model = MODELS.build(small_model_cfg(discriminator=None, gan_loss=None))
    sampler = model.camera_sampler
    sampler.max_azimuth_deg = sampler.max_elevation_deg = sampler.max_roll_deg = 0.0
    x = model.normalize(fake_batch()['inputs']['keypoints_2d'])
    model.eval()
    out = model.cycle(x)
    assert torch.allclose(out['rot'], torch.eye(3).expand(16, 3, 3), atol=1e-7)
    # Identity rotation: the second lift sees exactly the first input, so both errors are 0.
    loss_2d = mean_joint_distance(out['reprojection'], out['input_2d'])
    loss_3d = mean_joint_distance(out['pose_3d_second'], out['pose_3d_rotated'])
    assert loss_2d.shape == loss_3d.shape == (16, )
    assert loss_2d.abs().max() < 1e-5
    assert loss_3d.abs().max() < 1e-4
    assert torch.allclose(out['fake_2d'], x, atol=1e-6)
    # The cycle losses are the batch means of these per-sample errors.
    l2d, l3d = model.cycle_losses
    assert l2d(out).item() == pytest.approx(loss_2d.mean().item(), abs=1e-7)
    assert l3d(out).item() == pytest.approx(loss_3d.mean().item(), abs=1e-7)


def test_flat_poses_are_not_self_consistent_under_rotation():
    model = MODELS.build(small_model_cfg(
        lifter=dict(type='FlatDepthLifter'), discriminator=None, gan_loss=None))
    x = model.normalize(fake_batch()['inputs']['keypoints_2d'])
    out = model.cycle(x)
    assert mean_joint_distance(out['pose_3d_second'], out['pose_3d_rotated']).mean() > 1e-2


def test_predict_returns_pose_data_samples():
    model = MODELS.build(small_model_cfg(test_cfg=dict(output_head_root=0.72))).eval()
    batch = fake_batch(4)
    samples = model(batch['inputs'], None, mode='predict')
    assert len(samples) == 4 and isinstance(samples[0], PoseDataSample)
    kpts = samples[0].pred_instances.keypoints
    assert kpts.shape == (1, 17, 3)
    assert np.allclose(kpts[0, 0], 0.0)
    assert np.linalg.norm(kpts[0, 10]) == pytest.approx(0.72, rel=1e-5)


def test_wrong_joint_count_is_rejected():
    model = MODELS.build(small_model_cfg())
    with pytest.raises(ValueError, match=r'\(B, 17, 2\)'):
        model(dict(keypoints_2d=torch.zeros(2, 16, 2)), mode='tensor')


def test_gan_loss_without_discriminator_is_self_consistency_only():
    # Replaces the old 'loss_adv > 0 needs a discriminator' error: a part left out of the
    # config is not computed, so the adversarial term (and the discriminator step) just vanish.
    model = MODELS.build(small_model_cfg(discriminator=None))
    assert model.discriminator is None and model.gan_loss is not None
    losses, disc_batches = model.generator_losses(fake_batch()['inputs'])
    assert set(losses) == {'loss_2d', 'loss_3d'} and disc_batches == {}
    # Likewise a discriminator without its gan_loss is neither used nor trained.
    model = MODELS.build(small_model_cfg(gan_loss=None))
    losses, disc_batches = model.generator_losses(fake_batch()['inputs'])
    assert set(losses) == {'loss_2d', 'loss_3d'} and disc_batches == {}


def test_unknown_loss_and_old_arguments_are_errors():
    with pytest.raises(KeyError, match='LossFoo is not in the'):
        MODELS.build(small_model_cfg(cycle_losses=[dict(type='LossFoo')]))
    # Each argument of the pre-component API names its replacement.
    replaced = dict(loss_weights=(dict(loss_foo=1.0), 'cycle_losses / gan_loss / sup_loss'),
                    rotation=(dict(max_azimuth_deg=90.0), 'camera_sampler'),
                    use_scores=(True, "the lifter's in_channels=3"),
                    train_cfg=(dict(flip_prob=0.5), 'flip / keypoint_noise'),
                    up_idx=(8, r'ElevationRegressionLoss\(up_idx=...\)'))
    for key, (value, replacement) in replaced.items():
        with pytest.raises(TypeError, match=f'"{key}" was replaced by {replacement}'):
            MODELS.build(small_model_cfg(**{key: value}))
    with pytest.raises(TypeError, match=r'"loss_foo" was replaced by nothing \(unknown'):
        MODELS.build(small_model_cfg(loss_foo=1.0))


def test_supervised_loss_only_on_labelled_rows():
    model = MODELS.build(small_model_cfg(
        discriminator=None, cycle_losses=[], gan_loss=None,
        sup_loss=dict(type='ScaleAlignedMPJPELoss', loss_weight=1.0)))
    inputs = fake_batch(8)['inputs']
    inputs['keypoints_3d'] = torch.randn(8, 17, 3)
    inputs['has_3d'] = torch.zeros(8, dtype=torch.bool)
    losses, disc_batches = model.generator_losses(inputs)
    assert losses['loss_sup'].item() == 0.0
    assert set(losses) == {'loss_sup'} and disc_batches == {}  # no cycle, no discriminator
    inputs['has_3d'][:3] = True
    losses, _ = model.generator_losses(inputs)
    assert losses['loss_sup'].item() > 0
    losses['loss_sup'].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.lifter.parameters())


def test_train_step_with_plain_optim_wrapper_without_discriminator():
    model = MODELS.build(small_model_cfg(discriminator=None, gan_loss=None))
    wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    log = model.train_step(fake_batch(), wrapper)
    assert 'loss_adv' not in log and 'loss_disc' not in log
    model_d = MODELS.build(small_model_cfg())
    before = {k: v.clone() for k, v in model_d.state_dict().items()}
    with pytest.raises(KeyError, match='OptimWrapperDict'):
        model_d.train_step(fake_batch(), OptimWrapper(torch.optim.Adam(model_d.parameters())))
    # refused before any update: no half-done step
    assert all(torch.equal(v, before[k]) for k, v in model_d.state_dict().items())


def test_r1_penalty_trains_discriminator_only():
    model = MODELS.build(small_model_cfg(
        disc_auxiliary_losses=[dict(type='R1GradientPenalty', loss_weight=0.5)]))
    real, fake = model.generator_losses(fake_batch()['inputs'])[1]['discriminator']
    losses = model.discriminator_losses('discriminator', real.detach(), fake)
    assert set(losses) == {'loss_disc', 'loss_disc_r1'}
    assert losses['loss_disc_r1'] > 0 and torch.isfinite(losses['loss_disc_r1'])
    losses['loss_disc_r1'].backward()
    assert all(p.grad is None for p in model.lifter.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.discriminator.parameters())
    # The penalty is |grad_x D|^2 / 2 * weight, checked against autograd for one sample.
    x = real[:1].detach().requires_grad_(True)
    g, = torch.autograd.grad(model.discriminator(x).sum(), x)
    one = model.discriminator_losses('discriminator', real[:1].detach(),
                                     fake[:1])['loss_disc_r1']
    assert one.item() == pytest.approx(0.25 * g.pow(2).sum().item(), rel=1e-4)


def _temporal_model():
    return MODELS.build(small_model_cfg(
        temporal_discriminator=dict(type='PoseDiscriminator2D', width=32, num_blocks=1,
                                    num_frames=2),
        temporal_gan_loss=dict(type='GANLoss', loss_name='loss_temporal')))


def _temporal_batch(batch=16):
    data = fake_batch(batch)
    nxt = fake_batch(batch, seed=1)['inputs']['keypoints_2d']
    data['inputs']['keypoints_2d_next'] = data['inputs']['keypoints_2d'] * 0.9 + nxt * 0.1
    has_next = torch.ones(batch, dtype=torch.bool)
    has_next[-3:] = False
    data['inputs']['has_next'] = has_next
    return data


def test_temporal_discriminator_step_updates_only_it_and_needs_pairs():
    model = _temporal_model()
    ctor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='Unsup3DOptimWrapperConstructor',
        optim_wrapper_cfg={k: dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
                           for k in ('lifter', 'discriminator', 'temporal_discriminator')}))
    wrappers = ctor(model)
    before = copy.deepcopy(model.temporal_discriminator.state_dict())
    log = model.train_step(_temporal_batch(), wrappers)
    assert {'loss_temporal', 'loss_tdisc'} <= set(log)
    assert any(not torch.equal(before[k], v)
               for k, v in model.temporal_discriminator.state_dict().items())
    # The generator's temporal term reaches the lifter and leaves the temporal D untouched.
    losses, disc_batches = model.generator_losses(_temporal_batch()['inputs'])
    losses['loss_temporal'].backward()
    assert all(p.grad is None for p in model.temporal_discriminator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.lifter.parameters())
    assert set(disc_batches) == {'discriminator', 'temporal_discriminator'}
    real, fake = disc_batches['temporal_discriminator']
    assert real.shape == fake.shape == (13, 2, 17, 2)  # rows without a successor are dropped
    assert not real.requires_grad and not fake.requires_grad
    with pytest.raises(KeyError, match='with_next=True'):
        model.generator_losses(fake_batch()['inputs'])
