"""MMPose head that turns lifter features into per-joint depths and back-projects them to 3D."""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmpose.models.heads.base_head import BaseHead
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.utils.typing import ConfigType, OptConfigType, OptSampleList, Predictions

__all__ = ['DepthLiftingHead']


@MODELS.register_module()
class DepthLiftingHead(BaseHead):
    """Depth-offset head for MMPose's ``PoseLifter`` (the last layer of the unsupervised lifter).

    With ``ResidualLifter(as_backbone=True)`` as the backbone, ``PoseLifter(backbone, head=this)``
    computes exactly what :class:`~mmunsup3d.models.Unsup3DLifter` computes at test time: the
    backbone maps the normalised 2D pose to features, :meth:`forward` applies the final linear
    layer (``Unsup3DLifter.lifter.out``) to get one depth offset per joint, and the decoder
    (:class:`~mmunsup3d.codecs.PerspectiveDepthLifting`) back-projects the normalised 2D input
    with those depths. MMPose heads only receive backbone features, so the normalised 2D input
    reaches the decoder through the data sample's ``norm_keypoints_2d`` meta field, written by
    the same codec in the data pipeline (``GenerateTarget``) and kept by ``PackPoseInputs`` when
    listed in its ``meta_keys`` (as MMPose's own lifting heads read ``target_root``).

    Args:
        in_channels: backbone feature channels (the lifter's width).
        num_joints: number of joints K.
        loss: loss between decoded root-relative 3D and ``lifting_target_label`` for supervised
            fine-tuning (MMPose's ``MPJPELoss`` by default; predictions are in the decoder's
            output unit, so set the codec's ``output_head_root`` when targets are in metres).
        decoder: :class:`~mmunsup3d.codecs.PerspectiveDepthLifting` config (required).
        init_cfg: MMEngine initialisation config.
    """

    _version = 2
    META_KEY = 'norm_keypoints_2d'

    def __init__(self,
                 in_channels: int,
                 num_joints: int = 17,
                 loss: ConfigType = dict(type='MPJPELoss', use_target_weight=True),
                 decoder: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg)
        if decoder is None:
            raise ValueError(f'{type(self).__name__} needs a decoder (a codec with a '
                             '"lift(depth, norm_keypoints_2d)" method, e.g. '
                             'PerspectiveDepthLifting) to build 3D from depths')
        self.in_channels = in_channels
        self.num_joints = num_joints
        self.loss_module = MODELS.build(loss)
        self.decoder = KEYPOINT_CODECS.build(decoder)
        if not callable(getattr(self.decoder, 'lift', None)):
            raise TypeError(f'{type(self).__name__}: decoder {type(self.decoder).__name__} has '
                            'no "lift(depth, norm_keypoints_2d)" method')
        if getattr(self.decoder, 'num_keypoints', num_joints) != num_joints:
            raise ValueError(f'num_joints ({num_joints}) differs from the decoder\'s '
                             f'num_keypoints ({self.decoder.num_keypoints})')
        self.fc = nn.Linear(in_channels, num_joints)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Depth offsets from the last feature map.

        Args:
            feats: backbone outputs; the last one is ``(B, C, 1)`` (or ``(B, C)``).

        Returns:
            ``(B, K)`` depth offsets.
        """
        x = feats[-1]
        if x.ndim == 3:
            if x.shape[-1] != 1:
                raise ValueError(f'{type(self).__name__} lifts single frames: expected features '
                                 f'of shape (B, C, 1), got {tuple(x.shape)}')
            x = x[..., 0]
        return self.fc(x)

    def _norm_keypoints(self, batch_data_samples: Sequence, ref: Tensor) -> Tensor:
        """Stack the ``(1, K, 2)`` normalised inputs of a batch into ``(B, K, 2)``."""
        if not batch_data_samples or self.META_KEY not in batch_data_samples[0].metainfo:
            raise KeyError(f'{type(self).__name__} needs the normalised 2D input in each data '
                           f'sample\'s metainfo: add "{self.META_KEY}" to PackPoseInputs\' '
                           'meta_keys (the codec computes it in GenerateTarget)')
        norm = [torch.as_tensor(s.metainfo[self.META_KEY]) for s in batch_data_samples]
        return torch.stack(norm).to(ref).reshape(len(norm), self.num_joints, 2)

    def predict(self,
                feats: Tuple[Tensor],
                batch_data_samples: OptSampleList,
                test_cfg: OptConfigType = {}) -> Predictions:
        """Decode 3D poses: depths + normalised 2D -> ``pred_instances.keypoints (1, K, 3)``.

        The root is placed at the sample's ``target_root`` meta field when present (zeros at
        inference without 3D), so that MMPose's ``MPJPE`` can compare with the dataset's
        camera-frame ``lifting_target`` as for its own lifting heads.
        """
        if (test_cfg or {}).get('flip_test', False):
            raise NotImplementedError(f'{type(self).__name__} does not support flip_test')
        depth = self.forward(feats)
        norm = self._norm_keypoints(batch_data_samples, depth)
        target_root: Optional[Tensor] = None
        if 'target_root' in batch_data_samples[0].metainfo:
            target_root = torch.stack([
                torch.as_tensor(s.metainfo['target_root']) for s in batch_data_samples
            ]).to(depth)
        return self.decode((depth, norm, target_root))

    def loss(self,
             feats: Tuple[Tensor],
             batch_data_samples: OptSampleList,
             train_cfg: OptConfigType = {}) -> dict:
        """Supervised loss between decoded root-relative 3D and ``lifting_target_label``."""
        depth = self.forward(feats)
        pose = self.decoder.lift(depth, self._norm_keypoints(batch_data_samples, depth))
        target: List[Tensor] = [d.gt_instance_labels.lifting_target_label
                                for d in batch_data_samples]
        weight: List[Tensor] = [d.gt_instance_labels.lifting_target_weight
                                for d in batch_data_samples]
        target_t = torch.cat(target).to(pose).reshape_as(pose)
        weight_t = torch.cat(weight).to(pose).reshape(pose.shape[:2])
        return dict(loss_pose3d=self.loss_module(pose, target_t, weight_t.unsqueeze(-1)))
