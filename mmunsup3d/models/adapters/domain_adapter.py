"""2D domain adapter: COCO-17 detections -> the Human3.6M-17 2D distribution (Chen et al.)."""
from typing import Optional

import numpy as np
import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmpose.registry import MODELS
from ...structures.skeleton import COCO_TO_H36M_DIRECT, HEAD_TOP_FACTOR


def coco_to_h36m_matrix() -> np.ndarray:
    """The joint-name rule of :func:`~mmunsup3d.apis.coco_to_h36m` as a linear map.

    Returns:
        ``(17, 17)`` matrix ``A`` with ``h36m = A @ coco`` for ``(17, 2)`` poses (the head top
        uses the mid-eyes variant of the rule).
    """
    a = np.zeros((17, 17))
    for h, c in COCO_TO_H36M_DIRECT.items():
        a[h, c] = 1.0
    a[0, [11, 12]] = 0.5  # pelvis = mid-hips
    a[8, [5, 6]] = 0.5  # thorax = mid-shoulders
    a[7] = 0.5 * (a[0] + a[8])  # spine
    # head top = C + k (C - nose), C = mid-eyes
    a[10, [1, 2]] = 0.5 * (1.0 + HEAD_TOP_FACTOR)
    a[10, 0] = -HEAD_TOP_FACTOR
    return a


@MODELS.register_module()
class PoseDomainAdapter2D(BaseModule):
    """Map normalised 2D poses of another keypoint convention and domain into the lifter's.

    ``y = A x + MLP([x, scores])``: ``A`` is a fixed linear map from the joint *names* of the
    two conventions (:func:`coco_to_h36m_matrix`; no pose correspondence is used), and the MLP,
    whose last layer starts at zero, learns what names cannot say: where annotators and
    detectors put hips and heads, how noise and failures look. It is trained adversarially
    against the 2D pose discriminator of :class:`~mmunsup3d.models.Unsup3DLifter` (adapted poses
    must look like the lifter's real 2D poses) with a small penalty on the residual.

    Args:
        in_keypoints: joints of the source convention (COCO: 17).
        out_keypoints: joints of the target convention (Human3.6M: 17).
        with_scores: feed per-joint confidences to the MLP (input channels 3 instead of 2).
        width: hidden width.
        num_layers: hidden layers of the MLP.
        init_mapping: ``'coco_to_h36m'`` or ``None`` (no fixed part; the MLP does everything).
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 in_keypoints: int = 17,
                 out_keypoints: int = 17,
                 with_scores: bool = True,
                 width: int = 256,
                 num_layers: int = 2,
                 init_mapping: Optional[str] = 'coco_to_h36m',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_keypoints = in_keypoints
        self.out_keypoints = out_keypoints
        self.with_scores = with_scores
        if init_mapping == 'coco_to_h36m':
            if (in_keypoints, out_keypoints) != (17, 17):
                raise ValueError('init_mapping="coco_to_h36m" maps 17 COCO joints to 17 '
                                 f'Human3.6M joints, got {in_keypoints} -> {out_keypoints}')
            mapping = torch.as_tensor(coco_to_h36m_matrix(), dtype=torch.float32)
        elif init_mapping is None:
            mapping = torch.zeros(out_keypoints, in_keypoints)
        else:
            raise ValueError(f'init_mapping must be "coco_to_h36m" or None, got {init_mapping!r}')
        self.register_buffer('mapping', mapping)
        layers = []
        dim = in_keypoints * (3 if with_scores else 2)
        for _ in range(num_layers):
            layers += [nn.Linear(dim, width), nn.LeakyReLU(0.2)]
            dim = width
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(dim, out_keypoints * 2)
        with torch.no_grad():  # start as the fixed rule
            self.out.weight.zero_()
            self.out.bias.zero_()

    def forward(self, x: Tensor, scores: Optional[Tensor] = None,
                return_residual: bool = False):
        """Adapt poses.

        Args:
            x: ``(B, J_in, 2)`` normalised source poses (missing joints at 0).
            scores: ``(B, J_in)`` confidences (0 for missing joints); ``None`` = all 1.
            return_residual: also return the learned part (for its penalty).

        Returns:
            ``(B, J_out, 2)`` poses in the target convention (same normalisation units), and
            with ``return_residual`` the ``(B, J_out, 2)`` learned residual as well.
        """
        if x.ndim != 3 or x.shape[1:] != (self.in_keypoints, 2):
            raise ValueError(f'PoseDomainAdapter2D expects (B, {self.in_keypoints}, 2) poses, '
                             f'got {tuple(x.shape)}')
        feats = x
        if self.with_scores:
            if scores is None:
                scores = x.new_ones(x.shape[:2])
            feats = torch.cat([x, scores.unsqueeze(-1).to(x.dtype)], -1)
        fixed = torch.einsum('oi,bic->boc', self.mapping.to(x.dtype), x)
        residual = self.residual(feats)
        return (fixed + residual, residual) if return_residual else fixed + residual

    def residual(self, feats: Tensor) -> Tensor:
        """``(B, J_in, C)`` -> ``(B, J_out, 2)`` learned correction."""
        return self.out(self.body(feats.reshape(feats.shape[0], -1))).view(
            -1, self.out_keypoints, 2)
