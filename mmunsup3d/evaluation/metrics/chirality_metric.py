"""``ChiralityRate``: the label-free fraction of predicted poses that are mirror-handed.

An unsupervised lifter can converge to the depth mirror of the true solution: every 2D loss is
blind to it, and so is a per-frame glance at the predictions. The mirror does flip the pose's
handedness (:func:`~mmunsup3d.structures.chirality.leg_handedness`), so the fraction of
predictions with negative handedness tells the two apart without any 3D label: a few percent for
real motion capture, close to 100 % for a depth-mirrored model.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mmpose.registry import METRICS
from ...structures.chirality import chirality_joints, leg_handedness
from ...structures.skeleton import H36M_KEYPOINT_NAMES, H36M_PARENTS

__all__ = ['ChiralityRate']


@METRICS.register_module()
class ChiralityRate(BaseMetric):
    """Fraction of predicted 3D poses whose leg handedness is negative (mirror-handed).

    Reads ``data_sample['pred_instances']['keypoints']`` only (``(T, K, 3)`` or
    ``(1, T, K, 3)``, as MMPose's ``MPJPE`` does); ground truth is never used, so the metric is
    valid on unlabelled data too. A pose with handedness exactly zero (straight legs) counts as
    correctly handed. The score is invariant to rotation, translation and scale, so camera or
    world frames and any units work, as long as the frame is right-handed.

    Args:
        keypoint_names: ``(K,)`` joint names; ``None``: Human3.6M-17.
        parents: ``(K,)`` parent index per joint (``-1`` for the root); ``None``: Human3.6M-17.
        up_joint: name of the upper-torso joint that defines the body's up axis.
        collect_device: ``'cpu'`` or ``'gpu'``, for collecting results across ranks.
        prefix: prefix of the metric name (``'<prefix>/chirality_rate'``).

    Raises:
        ValueError: the skeleton lacks a joint the score needs (see
            :func:`~mmunsup3d.structures.chirality.chirality_joints`).
    """

    def __init__(self,
                 keypoint_names: Optional[Sequence[str]] = None,
                 parents: Optional[Sequence[int]] = None,
                 up_joint: str = 'thorax',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        names = H36M_KEYPOINT_NAMES if keypoint_names is None else tuple(keypoint_names)
        parents = H36M_PARENTS if parents is None else tuple(parents)
        self.num_keypoints = len(names)
        self.joints = chirality_joints(names, parents, up_joint)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Score the handedness of every predicted pose of a batch.

        Only the ``(T,)`` scores and a count of non-finite poses are kept, so little is
        gathered across ranks.

        Args:
            data_batch: the dataloader's batch (unused).
            data_samples: model outputs (dicts), each with ``pred_instances.keypoints``
                ``(T, K, 3)`` or ``(1, T, K, 3)``.

        Raises:
            KeyError: a sample has no ``pred_instances`` / ``keypoints``.
            ValueError: the keypoints do not have ``K`` joints of 3 coordinates.
        """
        for i, data_sample in enumerate(data_samples):
            pred = data_sample.get('pred_instances') if hasattr(data_sample, 'get') else None
            if pred is None or 'keypoints' not in pred:
                raise KeyError(f'ChiralityRate: data sample {i} has no '
                               'pred_instances.keypoints')
            coords = pred['keypoints']
            if isinstance(coords, torch.Tensor):
                coords = coords.detach().cpu().numpy()
            coords = np.asarray(coords, dtype=np.float64)
            if coords.ndim == 4 and coords.shape[0] == 1:
                coords = coords[0]
            if coords.ndim != 3 or coords.shape[1:] != (self.num_keypoints, 3):
                raise ValueError(f'ChiralityRate: pred_instances.keypoints must have shape '
                                 f'(T, {self.num_keypoints}, 3) or (1, T, '
                                 f'{self.num_keypoints}, 3), got {np.shape(pred["keypoints"])}')
            finite = np.isfinite(coords).all(axis=(1, 2))
            scores = leg_handedness(torch.from_numpy(coords[finite]), self.joints).numpy()
            self.results.append(dict(handedness=scores, num_poses=len(coords),
                                     num_nonfinite=int((~finite).sum())))

    def compute_metrics(self, results: List[Dict[str, Any]]) -> Dict[str, float]:
        """Compute the mirror-handed fraction over all processed poses.

        Args:
            results: the dicts stored by :meth:`process`, from every rank.

        Returns:
            ``{'chirality_rate': fraction in [0, 1] of poses with handedness < 0}``.

        Raises:
            ValueError: no pose was processed (the rate would be NaN), or some predicted
                poses contain NaN or inf (the message says how many).
        """
        total = sum(r['num_poses'] for r in results)
        if total == 0:
            raise ValueError('ChiralityRate: no predicted poses were processed; the chirality '
                             'rate of an empty set is undefined')
        nonfinite = sum(r['num_nonfinite'] for r in results)
        if nonfinite:
            raise ValueError(f'ChiralityRate: {nonfinite} of {total} predicted pose(s) contain '
                             'NaN or inf')
        scores = np.concatenate([r['handedness'] for r in results])
        return {'chirality_rate': float((scores < 0).mean())}
