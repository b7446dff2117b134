"""MMPose keypoint codec for lifters that predict per-joint depth offsets (Chen et al. style)."""
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from mmpose.codecs.base import BaseKeypointCodec
from mmpose.registry import KEYPOINT_CODECS
from ..structures.geometry import lift_to_3d, normalize_2d, root_center

__all__ = ['PerspectiveDepthLifting']


@KEYPOINT_CODECS.register_module()
class PerspectiveDepthLifting(BaseKeypointCodec):
    """Normalise 2D poses like :class:`~mmunsup3d.models.Unsup3DLifter` and decode depths to 3D.

    MMPose's :class:`~mmpose.codecs.ImagePoseLifting` normalises 2D keypoints with a fixed,
    dataset-wide mean and std and regresses 3D coordinates directly. The unsupervised lifter
    instead (1) normalises every pose on its own: root-centred and scaled so that the head-root
    distance is ``1/c`` (or, with ``scale_mode='rms'``, so that the RMS joint distance from the
    root is ``0.65/c``), and (2) predicts one depth offset ``d`` per joint, from which 3D follows
    by perspective back-projection: ``z = max(min_depth, d + c)``, ``X = (x z, y z, z)``. Neither
    step can be expressed by ``ImagePoseLifting``, so this codec does both, with the very
    functions of :mod:`mmunsup3d.models.geometry` that ``Unsup3DLifter`` uses.

    Encoding (data pipeline, ``GenerateTarget``):

    - ``keypoint_labels``: ``(K*2, 1)`` normalised 2D, the network input (packed into
      ``inputs`` by ``PackPoseInputs``; same layout as ``ImagePoseLifting``); with
      ``concat_vis=True`` ``(K*3, 1)``: ``(x, y, score)`` per joint for a confidence-aware
      lifter (``ResidualLifter(in_channels=3)``), the score being ``keypoints_visible``;
    - ``norm_keypoints_2d``: ``(1, K, 2)`` the same normalised pose, needed again to decode
      (list it in ``PackPoseInputs.meta_keys``);
    - ``lifting_target_label`` / ``lifting_target_weight``: root-relative 3D target ``(1, K, 3)``
      and its ``(1, K)`` weights (supervised fine-tuning only);
    - ``target_root``: ``(1, 3)`` root of ``lifting_target`` (zeros without a target), added back
      when decoding, as MMPose's lifting heads do, so that MMPose's ``MPJPE`` metric can compare
      with the dataset's absolute camera-frame ``lifting_target``.

    Decoding (head): depth offsets ``(B, K)`` + ``norm_keypoints_2d`` -> root-relative
    camera-frame 3D (x right, y down, z forward), in model units, or rescaled so that the 3D
    head-root distance is ``output_head_root`` (metres), then shifted by ``target_root``.

    Only single frames are supported (``T = 1``), as the residual lifter is a per-frame model.

    2D confidences travel as MMPose's lifting pipelines carry them: MMPose's mocap datasets
    put the third column of the 2D keypoints (``part[..., 2]``, or the detector score of
    ``keypoint_2d_src='detection'``) into ``keypoints_visible``, and MMPose's own
    ``MotionBERTLabel(concat_vis=True)`` appends it to the network input; ``concat_vis`` here
    does the same, in the joint-major layout ``Unsup3DLifter.lift`` feeds its lifter
    (``cat([x, scores[..., None]], -1)``). MMPose's inference APIs
    (``inference_pose_lifter_model``, ``Pose3DInferencer``) set ``keypoints_visible`` to ones,
    so there a confidence-aware lifter sees score 1 (as ``lift_keypoints`` without scores).

    Args:
        num_keypoints: number of joints K (Human3.6M-17 order for the shipped models).
        root_index: root joint (pelvis).
        head_index: head joint used for scale normalisation and ``output_head_root``.
        depth_offset: ``c``; the normalised size is ``1/c`` and ``z = max(min_depth, d + c)``.
        min_depth: smallest depth of a lifted joint.
        scale_mode: 2D scale normalisation of the source model: ``'head'`` or ``'rms'``.
        output_head_root: if set, decoded poses are rescaled so that the head-root distance
            equals it (metres), as ``Unsup3DLifter.test_cfg.output_head_root``; ``None`` keeps
            model units.
        concat_vis: append ``keypoints_visible`` (scores in ``[0, 1]``) to each joint of the
            network input, for lifters with ``in_channels=3`` (name as ``MotionBERTLabel``'s).
    """

    auxiliary_encode_keys = {'lifting_target', 'lifting_target_visible'}

    instance_mapping_table = dict(
        lifting_target='lifting_target',
        lifting_target_visible='lifting_target_visible',
    )
    label_mapping_table = dict(
        lifting_target_label='lifting_target_label',
        lifting_target_weight='lifting_target_weight',
    )

    def __init__(self,
                 num_keypoints: int = 17,
                 root_index: int = 0,
                 head_index: int = 10,
                 depth_offset: float = 10.0,
                 min_depth: float = 1.0,
                 scale_mode: str = 'head',
                 output_head_root: Optional[float] = None,
                 concat_vis: bool = False) -> None:
        super().__init__()
        if not 0 <= root_index < num_keypoints or not 0 <= head_index < num_keypoints:
            raise ValueError(f'root_index ({root_index}) and head_index ({head_index}) must be '
                             f'joint indices in [0, {num_keypoints})')
        if root_index == head_index:
            raise ValueError('root_index and head_index must differ')
        if scale_mode not in ('head', 'rms'):
            raise ValueError(f"scale_mode must be 'head' or 'rms', got {scale_mode!r}")
        if output_head_root is not None and output_head_root <= 0:
            raise ValueError(f'output_head_root must be positive or None, got {output_head_root}')
        self.num_keypoints = num_keypoints
        self.root_index = root_index
        self.head_index = head_index
        self.depth_offset = float(depth_offset)
        self.min_depth = float(min_depth)
        self.scale_mode = scale_mode
        self.output_head_root = output_head_root
        self.concat_vis = bool(concat_vis)

    # ------------------------------------------------------------------ torch helpers
    def normalize(self, keypoints: Tensor) -> Tensor:
        """``(..., K, 2)`` image-plane 2D -> normalised 2D, exactly as ``Unsup3DLifter``."""
        return normalize_2d(keypoints, self.root_index, self.head_index, self.depth_offset,
                            mode=self.scale_mode)[0]

    def lift(self, depth: Tensor, norm_keypoints_2d: Tensor) -> Tensor:
        """Differentiable decoding of depth offsets (shared by decoding and training losses).

        Args:
            depth: ``(B, K)`` depth offsets predicted by the network.
            norm_keypoints_2d: ``(B, K, 2)`` normalised 2D input poses.

        Returns:
            ``(B, K, 3)`` root-relative camera-frame 3D, in model units or rescaled to
            ``output_head_root``.
        """
        pose = root_center(
            lift_to_3d(norm_keypoints_2d, depth, self.depth_offset, self.min_depth),
            self.root_index)
        if self.output_head_root:
            dist = pose[..., self.head_index, :].norm(dim=-1).clamp_min(1e-8)
            pose = pose * (self.output_head_root / dist)[..., None, None]
        return pose

    # ------------------------------------------------------------------ encoding
    def encode(self,
               keypoints: np.ndarray,
               keypoints_visible: Optional[np.ndarray] = None,
               lifting_target: Optional[np.ndarray] = None,
               lifting_target_visible: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
        """Normalise one sample's 2D pose and prepare its (optional) 3D target.

        Args:
            keypoints: ``(1, K, 2)`` image-plane 2D keypoints (pixels or any unit).
            keypoints_visible: ``(1, K)`` (or ``(K,)`` / ``(1, K, 1)``) visibilities or 2D
                scores, ones if ``None``; passed through, and with ``concat_vis`` the third
                input channel (then they must be finite and in ``[0, 1]``).
            lifting_target: optional ``(1, K, 3)`` camera-frame 3D (metres).
            lifting_target_visible: optional ``(1, K)`` or ``(1, K, 1)`` 3D visibilities.

        Returns:
            Encoded items, see the class documentation.

        Raises:
            ValueError: keypoints not of shape ``(1, K, 2)``; ``keypoints_visible`` not ``K``
                values per frame, or (``concat_vis``) non-finite or outside ``[0, 1]``.
        """
        kpts = np.asarray(keypoints, dtype=np.float32)
        if kpts.ndim == 2:
            kpts = kpts[None]
        if kpts.ndim != 3 or kpts.shape[1:] != (self.num_keypoints, 2):
            raise ValueError(f'{type(self).__name__} expects keypoints of shape '
                             f'(1, {self.num_keypoints}, 2), got {np.shape(keypoints)}')
        if kpts.shape[0] != 1:
            raise ValueError(f'{type(self).__name__} lifts single frames (T = 1, seq_len=1), '
                             f'got {kpts.shape[0]} frames')
        if keypoints_visible is None:
            keypoints_visible = np.ones(kpts.shape[:2], dtype=np.float32)
        vis = np.asarray(keypoints_visible, dtype=np.float32)
        if vis.size != self.num_keypoints:
            raise ValueError(f'{type(self).__name__} expects keypoints_visible with '
                             f'{self.num_keypoints} values (shape (1, {self.num_keypoints})), '
                             f'got shape {np.shape(keypoints_visible)}')
        vis = vis.reshape(1, self.num_keypoints)
        norm = self.normalize(torch.from_numpy(kpts)).numpy()  # (1, K, 2)
        net_in = norm
        if self.concat_vis:
            # The lifter was trained on scores in [0, 1] (lift_keypoints enforces the same).
            bad = ~np.isfinite(vis) | (vis < 0.0) | (vis > 1.0)
            if bad.any():
                j = int(np.flatnonzero(bad[0])[0])
                raise ValueError(f'{type(self).__name__}(concat_vis=True): keypoints_visible '
                                 f'are the lifter\'s 2D scores and must be finite and in '
                                 f'[0, 1]; joint {j} has {float(vis[0, j]):g}')
            net_in = np.concatenate([norm, vis[..., None]], -1)  # (1, K, 3)

        if lifting_target is None:
            target = np.zeros((1, self.num_keypoints, 3), dtype=np.float32)
            target_visible = np.zeros((1, self.num_keypoints), dtype=np.float32)
        else:
            target = np.asarray(lifting_target, dtype=np.float32).reshape(
                1, self.num_keypoints, 3)
            target_visible = np.ones((1, self.num_keypoints), dtype=np.float32) \
                if lifting_target_visible is None else \
                np.asarray(lifting_target_visible, dtype=np.float32).reshape(
                    1, self.num_keypoints)
        root = target[:, self.root_index]  # (1, 3)
        return dict(
            # (T, K, C) -> (K * C, T): joint-major, as ImagePoseLifting packs lifting inputs
            # (and as ResidualLifter flattens (B, K, C)).
            keypoint_labels=net_in.transpose(1, 2, 0).reshape(-1, 1),
            keypoint_labels_visible=keypoints_visible,
            norm_keypoints_2d=norm,
            lifting_target_label=target - root[:, None],
            lifting_target_weight=(target_visible > 0.5).astype(np.float32),
            target_root=root)

    # ------------------------------------------------------------------ decoding
    def batch_decode(self,
                     depth: Tensor,
                     norm_keypoints_2d: Tensor,
                     target_root: Optional[Tensor] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Decode a batch of depth offsets to 3D.

        Args:
            depth: ``(B, K)`` depth offsets.
            norm_keypoints_2d: ``(B, K, 2)`` (or ``(B, 1, K, 2)``) normalised 2D inputs.
            target_root: optional ``(B, 3)`` / ``(B, 1, 3)`` roots to add back; empty or
                ``None`` keeps root-relative coordinates.

        Returns:
            ``(keypoints, scores)``: ``(B, 1, K, 3)`` float32 3D poses and ``(B, 1, K)`` ones.
        """
        depth = torch.as_tensor(depth)
        batch = depth.shape[0]
        norm = torch.as_tensor(norm_keypoints_2d).to(depth).reshape(batch, self.num_keypoints, 2)
        pose = self.lift(depth.reshape(batch, self.num_keypoints), norm)
        if target_root is not None and torch.as_tensor(target_root).numel() > 0:
            pose = pose + torch.as_tensor(target_root).to(pose).reshape(batch, 1, 3)
        keypoints = pose.detach().float().cpu().numpy()[:, None]
        scores = np.ones(keypoints.shape[:-1], dtype=np.float32)
        return keypoints, scores

    def decode(self,
               encoded: np.ndarray,
               norm_keypoints_2d: Optional[np.ndarray] = None,
               target_root: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Decode one sample.

        Args:
            encoded: ``(K,)`` or ``(1, K)`` depth offsets.
            norm_keypoints_2d: ``(1, K, 2)`` normalised 2D input (from :meth:`encode`).
            target_root: optional ``(1, 3)`` root to add back.

        Returns:
            ``(keypoints, scores)`` of shapes ``(1, K, 3)`` and ``(1, K)``.
        """
        if norm_keypoints_2d is None:
            raise ValueError(f'{type(self).__name__}.decode needs the normalised 2D input '
                             '("norm_keypoints_2d" from encode) to back-project depths')
        keypoints, scores = self.batch_decode(
            torch.as_tensor(np.asarray(encoded, dtype=np.float32)).reshape(1, -1),
            torch.as_tensor(np.asarray(norm_keypoints_2d, dtype=np.float32)),
            None if target_root is None else torch.as_tensor(
                np.asarray(target_root, dtype=np.float32)))
        return keypoints[0], scores[0]
