"""Training-time augmentations of batches of normalised 2D poses (no 3D needed)."""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmpose.registry import TASK_UTILS
from ...structures.skeleton import H36M_FLIP_PAIRS, H36M_PARENTS

__all__ = ['RandomFlip2D', 'KeypointNoise2D']


def _flip_indices(num_keypoints: int, pairs: Sequence[Tuple[int, int]]) -> list:
    idx = list(range(num_keypoints))
    for a, b in pairs:
        idx[a], idx[b] = b, a
    return idx


@TASK_UTILS.register_module()
class RandomFlip2D(nn.Module):
    """Mirror 2D poses horizontally (left/right joints swapped) with probability ``flip_prob``.

    A mirrored 2D pose is as valid a training pose as the original. The draw's mask is returned
    so that the next frame of a temporal pair (or the scores) gets the same flip.

    Args:
        flip_prob: probability of flipping a pose; ``0`` draws no random number.
        flip_pairs: left/right joint pairs.
        num_keypoints: J.
    """

    def __init__(self, flip_prob: float = 0.5,
                 flip_pairs: Sequence[Tuple[int, int]] = H36M_FLIP_PAIRS,
                 num_keypoints: int = 17) -> None:
        super().__init__()
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f'flip_prob must lie in [0, 1], got {flip_prob}')
        self.flip_prob = flip_prob
        self.register_buffer('flip_index',
                             torch.tensor(_flip_indices(num_keypoints, flip_pairs)),
                             persistent=False)

    def flip(self, x: Tensor) -> Tensor:
        """``(B, J, 2)`` normalised (root-centred) poses, all mirrored."""
        flipped = x[..., self.flip_index, :].clone()
        flipped[..., 0] = -flipped[..., 0]
        return flipped

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Flip a random subset (or the poses ``mask`` selects).

        Args:
            x: ``(B, J, 2)`` normalised poses.
            mask: ``(B,)`` bool, reuse an earlier draw; ``None`` draws a new one.

        Returns:
            ``(poses (B, J, 2), mask (B,))``.
        """
        if mask is None:
            if self.flip_prob <= 0:  # no random draw: keeps the RNG stream of flip-free runs
                return x, torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
            mask = torch.rand(x.shape[0], device=x.device) < self.flip_prob
        if not mask.any():
            return x, mask
        return torch.where(mask[:, None, None], self.flip(x), x), mask

    def flip_scores(self, scores: Tensor, mask: Tensor) -> Tensor:
        """Permute ``(B, J)`` scores like :meth:`forward` permuted the joints."""
        if not mask.any():
            return scores
        return torch.where(mask[:, None], scores[:, self.flip_index], scores)


@TASK_UTILS.register_module()
class KeypointNoise2D(nn.Module):
    """Detector-like corruption of normalised 2D poses, for confidence-aware training.

    Each joint gets Gaussian jitter (``std`` x the pose's RMS size); with ``outlier_prob`` a
    gross error (``outlier_std``) instead; with ``drop_prob`` it is dropped: moved onto its
    parent (the root is never dropped, nor jittered: it is the normalisation's reference) with
    score 0. Scores are ``exp(-err^2 / (8 std^2))`` times the incoming ones, so they fall as
    the error grows.

    Args:
        std: jitter, relative to the RMS size.
        outlier_prob: probability of a gross error per joint.
        outlier_std: size of gross errors, relative to the RMS size.
        drop_prob: probability of dropping a joint.
        root_idx: root joint.
        parents: parent of each joint (-1 for the root).
    """

    def __init__(self, std: float = 0.0, outlier_prob: float = 0.0, outlier_std: float = 0.3,
                 drop_prob: float = 0.0, root_idx: int = 0,
                 parents: Sequence[int] = H36M_PARENTS) -> None:
        super().__init__()
        self.std = float(std)
        self.outlier_prob = float(outlier_prob)
        self.outlier_std = float(outlier_std)
        self.drop_prob = float(drop_prob)
        self.root_idx = root_idx
        self.register_buffer('parent_index', torch.tensor([max(p, 0) for p in parents]),
                             persistent=False)

    def forward(self, x: Tensor, scores: Tensor) -> Tuple[Tensor, Tensor]:
        """Corrupt a batch.

        Args:
            x: ``(B, J, 2)`` normalised poses.
            scores: ``(B, J)`` incoming scores.

        Returns:
            ``(corrupted poses (B, J, 2), scores (B, J))``; the poses are no longer normalised
            (the caller re-normalises them).
        """
        std = self.std
        size = x.pow(2).sum(-1).mean(-1).sqrt()[:, None, None]  # (B, 1, 1) RMS size
        noise = torch.randn_like(x) * std
        if self.outlier_prob > 0:
            outlier = torch.rand(x.shape[:-1], device=x.device) < self.outlier_prob
            noise = torch.where(outlier[..., None], torch.randn_like(x) * self.outlier_std,
                                noise)
        noise[:, self.root_idx] = 0.0
        err = noise.norm(dim=-1)
        conf = torch.exp(-err.pow(2) / (8.0 * std * std)) if std > 0 else torch.ones_like(err)
        noisy = x + noise * size
        if self.drop_prob > 0:
            drop = torch.rand(x.shape[:-1], device=x.device) < self.drop_prob
            drop[:, self.root_idx] = False
            noisy = torch.where(drop[..., None], noisy[:, self.parent_index], noisy)
            conf = torch.where(drop, torch.zeros_like(conf), conf)
        return noisy, scores * conf
