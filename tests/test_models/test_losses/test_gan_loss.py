"""GANLoss on known logits (hand-computed values)."""
import math

import pytest
import torch

from mmpose.registry import MODELS
from mmunsup3d.models.losses import GANLoss

LOGITS = torch.tensor([2.0, -1.0, 0.0])


def _softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_registered_with_weight_and_name():
    loss = MODELS.build(dict(type='GANLoss', gan_type='lsgan', loss_weight=0.5,
                             loss_name='loss_temporal'))
    assert isinstance(loss, GANLoss) and loss.loss_weight == 0.5
    assert loss.loss_name == 'loss_temporal' and GANLoss().loss_name == 'loss_adv'
    with pytest.raises(ValueError, match="gan_type must be one of"):
        GANLoss(gan_type='wgan')


def test_vanilla_is_binary_cross_entropy():
    # generator: -log sigmoid(l) = softplus(-l); weight 2
    want = 2 * sum(_softplus(-v) for v in LOGITS.tolist()) / 3
    assert GANLoss('vanilla', loss_weight=2.0)(LOGITS).item() == pytest.approx(want, rel=1e-6)
    real, fake = torch.tensor([3.0]), torch.tensor([1.0])
    want_d = 0.5 * (_softplus(-3.0) + _softplus(1.0))
    # the discriminator term is not weighted
    got = GANLoss('vanilla', loss_weight=7.0).discriminator_loss(real, fake).item()
    assert got == pytest.approx(want_d, rel=1e-6)


def test_lsgan_and_hinge_values():
    assert GANLoss('lsgan')(LOGITS).item() == pytest.approx((1 + 4 + 1) / 3)
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-1.0, 0.5])
    # lsgan D: 0.5 * (mean((r-1)^2) + mean(f^2)) = 0.5 * ((1 + 0.25)/2 + (1 + 0.25)/2)
    assert GANLoss('lsgan').discriminator_loss(real, fake).item() == pytest.approx(0.625)
    # hinge G: -mean(l); D: 0.5 * (mean relu(1 - r) + mean relu(1 + f)) = 0.5 * (0.25 + 0.75)
    assert GANLoss('hinge', loss_weight=3.0)(LOGITS).item() == pytest.approx(-3 * 1 / 3)
    assert GANLoss('hinge').discriminator_loss(real, fake).item() == pytest.approx(0.5)


def test_empty_batch_gives_zero_with_graph():
    logits = torch.zeros(0, requires_grad=True)
    out = GANLoss()(logits)
    assert out.item() == 0.0 and out.requires_grad
