"""2D augmentations: flip masks for temporal pairs, detector-like noise."""
import torch

from mmpose.registry import TASK_UTILS
from mmunsup3d.models.task_modules import KeypointNoise2D, RandomFlip2D
from mmunsup3d.structures import H36M_FLIP_PAIRS


def test_flip_swaps_sides_negates_x_and_returns_its_mask():
    flip = TASK_UTILS.build(dict(type='RandomFlip2D', flip_prob=0.5))
    x = torch.randn(200, 17, 2)
    torch.manual_seed(0)
    y, mask = flip(x)
    assert 60 < int(mask.sum()) < 140
    assert torch.equal(y[~mask], x[~mask])
    a, b = H36M_FLIP_PAIRS[0]
    assert torch.equal(y[mask][:, a, 0], -x[mask][:, b, 0])
    assert torch.equal(y[mask][:, a, 1], x[mask][:, b, 1])
    # the next frame reuses the mask: no new draw
    state = torch.get_rng_state()
    y2, mask2 = flip(x, mask)
    assert torch.equal(mask2, mask) and torch.equal(y2, y)
    assert torch.equal(torch.get_rng_state(), state)
    scores = torch.arange(17.0).expand(200, 17)
    flipped = flip.flip_scores(scores, mask)
    assert flipped[mask][0, a] == b and flipped[~mask][0, a] == a


def test_flip_prob_zero_draws_nothing():
    flip = RandomFlip2D(flip_prob=0.0)
    x = torch.randn(4, 17, 2)
    state = torch.get_rng_state()
    y, mask = flip(x)
    assert torch.equal(y, x) and not mask.any()
    assert torch.equal(torch.get_rng_state(), state)


def test_keypoint_noise_drops_onto_parents_with_zero_score():
    noise = KeypointNoise2D(std=0.0, drop_prob=1.0)
    x = torch.randn(3, 17, 2)
    y, s = noise(x, torch.ones(3, 17))
    assert torch.equal(y[:, 0], x[:, 0]) and s[:, 0].eq(1).all()  # root kept
    assert torch.equal(y[:, 1], x[:, 0]) and s[:, 1:].eq(0).all()  # right hip -> pelvis
    jitter = KeypointNoise2D(std=0.05)
    torch.manual_seed(0)
    y, s = jitter(x, torch.full((3, 17), 0.5))
    assert torch.equal(y[:, 0], x[:, 0]) and (s <= 0.5).all() and (s[:, 1:] < 0.5).any()
