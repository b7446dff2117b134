"""Inference side of a depth lifter: 2D normalisation, lifting and MMEngine's ``forward``."""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor

from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from ...structures.geometry import lift_to_3d, normalize_2d, root_center

__all__ = ['BaseDepthLifter']


class BaseDepthLifter(BaseModel):
    """A lifting network with the paper's perspective geometry, for training models to extend.

    2D poses are root-centred and scaled to a head-root distance (or RMS size) of ``1/c``;
    the network predicts a depth offset ``d`` per joint and ``z = max(min_depth, d + c)``,
    ``X = (x z, y z, z)`` (:func:`~mmunsup3d.structures.geometry.lift_to_3d`).

    Args:
        lifter: lifting network config, ``(B, J, C)`` -> ``(B, J)`` depth offsets; ``C = 3``
            (its ``in_channels``) makes the model confidence-aware.
        num_keypoints: J.
        root_idx: root joint (pelvis).
        head_idx: head joint of the ``'head'`` scale normalisation.
        depth_offset: ``c``.
        min_depth: smallest depth of a lifted joint.
        scale_mode: ``'head'`` (paper) or ``'rms'`` (see :func:`normalize_2d`).
        test_cfg: ``output_head_root`` (metres) rescales predictions; ``None`` keeps units.
        data_preprocessor: MMEngine data preprocessor config.
        init_cfg: MMEngine initialisation config.
    """

    #: Submodules a test / inference forward pass runs (``predict_3d`` uses the lifter only):
    #: checkpoint loading for evaluation and inference requires exactly their weights
    #: (:func:`mmunsup3d.utils.checkpoint.inference_prefixes`), so lifter-only checkpoints fit.
    inference_modules: Tuple[str, ...] = ('lifter', )

    def __init__(self, lifter: dict, num_keypoints: int = 17, root_idx: int = 0,
                 head_idx: int = 10, depth_offset: float = 10.0, min_depth: float = 1.0,
                 scale_mode: str = 'head', test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='BaseDataPreprocessor'),
                         init_cfg=init_cfg)
        self.lifter = MODELS.build(lifter)
        if scale_mode not in ('head', 'rms'):
            raise ValueError(f"scale_mode must be 'head' or 'rms', got {scale_mode!r}")
        self.num_keypoints, self.root_idx, self.head_idx = num_keypoints, root_idx, head_idx
        self.depth_offset, self.min_depth, self.scale_mode = depth_offset, min_depth, scale_mode
        self.test_cfg = {'output_head_root': None, **(test_cfg or {})}

    @property
    def use_scores(self) -> bool:
        """Confidence-aware: the lifter takes (x, y, score) per joint."""
        return getattr(self.lifter, 'in_channels', 2) == 3

    # ------------------------------------------------------------------ geometry
    def _check_keypoints(self, kpts: Tensor) -> None:
        if kpts.ndim < 3 or kpts.shape[-2:] != (self.num_keypoints, 2):
            raise ValueError(f'{type(self).__name__} expects 2D keypoints of shape '
                             f'(B, {self.num_keypoints}, 2), got {tuple(kpts.shape)}')

    def _normalize(self, keypoints_2d: Tensor) -> Tuple[Tensor, Tensor]:
        return normalize_2d(keypoints_2d, self.root_idx, self.head_idx, self.depth_offset,
                            mode=self.scale_mode)

    def normalize(self, keypoints_2d: Tensor) -> Tensor:
        """``(..., J, 2)`` pixels -> root-centred, scale-normalised (``scale_mode``)."""
        return self._normalize(keypoints_2d)[0]

    def lift(self, x: Tensor, scores: Optional[Tensor] = None) -> Tensor:
        """``(B, J, 2)`` normalised 2D (+ ``(B, J)`` scores, 1 if ``None``) -> ``(B, J, 3)``."""
        inp = x
        if self.use_scores:
            scores = x.new_ones(x.shape[:-1]) if scores is None else scores.to(x.dtype)
            inp = torch.cat([x, scores.unsqueeze(-1)], -1)
        return lift_to_3d(x, self.lifter(inp), self.depth_offset, self.min_depth)

    @torch.no_grad()
    def predict_3d(self, keypoints_2d: Tensor, keypoint_scores: Optional[Tensor] = None) -> Tensor:
        """``(B, J, 2)`` image-plane poses (+ ``(B, J)`` scores) -> ``(B, J, 3)`` root-relative
        camera-frame 3D, in metres scaled by ``test_cfg.output_head_root`` or model units."""
        self._check_keypoints(keypoints_2d)
        if keypoint_scores is not None and keypoint_scores.shape != keypoints_2d.shape[:-1]:
            raise ValueError(f'keypoint_scores must have shape {tuple(keypoints_2d.shape[:-1])}, '
                             f'got {tuple(keypoint_scores.shape)}')
        pose = root_center(self.lift(self.normalize(keypoints_2d), keypoint_scores),
                           self.root_idx)
        head_root = self.test_cfg.get('output_head_root')
        if head_root:
            dist = pose[:, self.head_idx].norm(dim=-1).clamp_min(1e-8)
            pose = pose * (head_root / dist)[:, None, None]
        return pose

    def forward(self, inputs: Dict[str, Tensor],
                data_samples: Optional[List[PoseDataSample]] = None, mode: str = 'tensor'):
        """MMEngine entry point: ``tensor`` (3D poses), ``predict`` or ``loss``."""
        if mode == 'tensor':
            return self.predict_3d(inputs['keypoints_2d'], inputs.get('keypoint_scores'))
        if mode == 'loss':
            return self.loss(inputs)
        if mode != 'predict':
            raise ValueError(f'Invalid mode "{mode}"; expected tensor, predict or loss')
        pose = self.predict_3d(inputs['keypoints_2d'], inputs.get('keypoint_scores'))
        data_samples = data_samples or [PoseDataSample() for _ in range(pose.shape[0])]
        for sample, kpts in zip(data_samples, pose.cpu().numpy()):
            pred = InstanceData()
            pred.keypoints = kpts[None].astype(np.float32)  # (1, J, 3), as MMPose's lifters
            pred.keypoint_scores = np.ones((1, kpts.shape[0]), dtype=np.float32)
            sample.pred_instances = pred
        return data_samples

    def loss(self, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Training losses (``forward(mode='loss')``); defined by the training model."""
        raise NotImplementedError
