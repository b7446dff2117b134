import numpy as np
import pytest

from mmunsup3d.structures import H36M_FLIP_PAIRS, H36M_PARENTS, rescale_bones, sample_bone_scales


def _bone_lengths(pose):
    return np.array([np.linalg.norm(pose[..., j, :] - pose[..., p, :], axis=-1)
                     for j, p in enumerate(H36M_PARENTS) if p >= 0])


def test_rescale_bones_scales_lengths_keeps_directions_and_root():
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(5, 17, 3))
    scales = np.linspace(0.5, 1.5, 17)
    out = rescale_bones(pose, scales)
    assert out.shape == pose.shape
    np.testing.assert_allclose(out[:, 0], pose[:, 0])
    ratio = _bone_lengths(out) / _bone_lengths(pose)
    np.testing.assert_allclose(ratio, np.broadcast_to(scales[1:, None], ratio.shape), rtol=1e-12)
    for j, p in enumerate(H36M_PARENTS):
        if p < 0:
            continue
        a, b = out[:, j] - out[:, p], pose[:, j] - pose[:, p]
        cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        np.testing.assert_allclose(cos, 1.0, atol=1e-12)


def test_rescale_bones_hand_computed_chain():
    # A 3-joint chain 0 -> 1 -> 2 along x: doubling bone 1 moves joint 2 by the same amount.
    pose = np.array([[0., 0, 0], [1, 0, 0], [1, 2, 0]])
    out = rescale_bones(pose, np.array([1., 2, 1]), parents=(-1, 0, 1))
    np.testing.assert_allclose(out, [[0, 0, 0], [2, 0, 0], [2, 2, 0]])
    # Parents listed after their children are handled (the order is topological, not by
    # index): the same chain reversed, joint 2 the root, joint 1's bone doubled.
    out = rescale_bones(pose[::-1], np.array([1., 2, 1]), parents=(1, 2, -1))
    np.testing.assert_allclose(out, [[2, 2, 0], [2, 0, 0], [0, 0, 0]])


def test_identity_scales_and_zero_std_change_nothing():
    pose = np.random.default_rng(1).normal(size=(3, 17, 3))
    np.testing.assert_allclose(rescale_bones(pose, np.ones(17)), pose, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(sample_bone_scales(np.random.default_rng(0), 0.0), np.ones(17))


def test_sample_bone_scales_symmetric_lognormal():
    draws = np.stack([sample_bone_scales(np.random.default_rng(s), 0.2) for s in range(400)])
    assert draws.shape == (400, 17)
    np.testing.assert_array_equal(draws[:, 0], 1.0)  # the root has no bone
    for left, right in H36M_FLIP_PAIRS:
        np.testing.assert_array_equal(draws[:, left], draws[:, right])
    logs = np.log(draws[:, [1, 2, 3, 7, 8, 9, 10]])
    assert abs(logs.mean()) < 0.03 and abs(logs.std() - 0.2) < 0.02


def test_bad_arguments():
    with pytest.raises(ValueError, match='std must be'):
        sample_bone_scales(np.random.default_rng(0), -0.1)
    with pytest.raises(ValueError, match='do not match'):
        rescale_bones(np.zeros((2, 16, 3)), np.ones(17))
    with pytest.raises(ValueError, match='cycle'):
        rescale_bones(np.zeros((2, 3)), np.ones(2), parents=(1, 0))
