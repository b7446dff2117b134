"""In-memory 2D/3D pose arrays served in whole batches (no per-sample Python on the hot path)."""
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.registry import FUNCTIONS
from mmengine.structures import InstanceData
from torch.utils.data import Dataset

from mmpose.structures import PoseDataSample

_BATCH_KEY = '_unsup3d_batch'


def h36m_metainfo() -> dict:
    """MMPose's Human3.6M-17 dataset meta (joint names, skeleton, flip pairs)."""
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    import mmpose
    cfg = osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs', '_base_', 'datasets',
                   'h36m.py')
    return parse_pose_metainfo(dict(from_file=cfg))


class PoseArrayDataset(Dataset):
    """Base class for datasets whose samples are rows of a few numpy arrays.

    Sub-classes fill ``self.arrays`` in :meth:`load_arrays` with:

    - ``keypoints_2d``: ``(N, J, 2)`` float32 image-plane keypoints (pixels);
    - optional ``keypoint_scores``: ``(N, J)`` float32 2D confidences;
    - optional ``keypoints_3d``: ``(N, J, 3)`` float32 root-relative camera-frame 3D in metres
      (test data; or labelled training rows, with ``has_3d``);
    - optional ``has_3d``: ``(N,)`` bool, rows whose 3D may be used in training;
    - optional ``next_index``: ``(N,)`` int64 row of the next frame of the same sequence and
      camera, ``-1`` at a sequence end (temporal consistency);
    - ``img_paths`` (test mode): ``(N,)`` str, ``<subject>_<action>.<camera>_<frame>.jpg`` as
      MMPose's ``MPJPE`` metric parses the action from it.

    Batches are assembled by :meth:`__getitems__` with vectorised indexing (PyTorch's
    ``DataLoader`` calls it with a whole batch of indices) and passed through
    ``unsup3d_collate``. In training mode no 3D reaches the model unless ``with_3d`` is set, and
    then only for rows with ``has_3d``.

    Args:
        test_mode: build ``PoseDataSample`` ground truth for MMPose's ``MPJPE`` metric.
        with_3d: in training mode, also return ``keypoints_3d`` and ``has_3d`` (semi- or fully
            supervised training). Ignored in test mode.
        with_next: also return the next frame's 2D (``keypoints_2d_next``, and
            ``keypoint_scores_next`` when the data has scores) and ``has_next``.
        metainfo: dataset meta; defaults to MMPose's Human3.6M meta.
    """

    def __init__(self,
                 test_mode: bool = False,
                 with_3d: bool = False,
                 with_next: bool = False,
                 metainfo: Optional[dict] = None) -> None:
        super().__init__()
        self.test_mode = test_mode
        self.with_3d = with_3d and not test_mode
        self.with_next = with_next
        self._metainfo = metainfo
        self.arrays: Dict[str, np.ndarray] = self.load_arrays()
        self._validate()

    # ----------------------------------------------------------------- to implement
    def load_arrays(self) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    # ----------------------------------------------------------------- checks
    def _validate(self) -> None:
        kpts = self.arrays.get('keypoints_2d')
        name = type(self).__name__
        if kpts is None or kpts.ndim != 3 or kpts.shape[-1] != 2:
            raise ValueError(f'{name}: keypoints_2d must be (N, J, 2), got '
                             f'{None if kpts is None else kpts.shape}')
        if len(kpts) == 0:
            raise ValueError(f'{name}: no samples')
        if not np.isfinite(kpts).all():
            raise ValueError(f'{name}: keypoints_2d contains NaN or inf')
        if self.test_mode:
            for key in ('keypoints_3d', 'img_paths'):
                if key not in self.arrays:
                    raise KeyError(f'{name}: test mode needs "{key}"')
        if self.with_3d and 'keypoints_3d' not in self.arrays:
            raise KeyError(f'{name}: with_3d=True but the data has no keypoints_3d')
        if self.with_next and 'next_index' not in self.arrays:
            raise KeyError(f'{name}: with_next=True but the data has no next_index')
        for key, arr in self.arrays.items():
            if len(arr) != len(kpts):
                raise ValueError(f'{name}: "{key}" has {len(arr)} rows, keypoints_2d '
                                 f'{len(kpts)}')

    @property
    def metainfo(self) -> dict:
        if self._metainfo is None:
            self._metainfo = h36m_metainfo()
        return self._metainfo

    def __len__(self) -> int:
        return len(self.arrays['keypoints_2d'])

    # ----------------------------------------------------------------- batching
    def __getitems__(self, indices: Sequence[int]) -> Dict[str, Any]:
        idx = np.asarray(indices, dtype=np.int64)
        arr = self.arrays
        inputs = {'keypoints_2d': torch.from_numpy(arr['keypoints_2d'][idx])}
        if 'keypoint_scores' in arr:
            inputs['keypoint_scores'] = torch.from_numpy(arr['keypoint_scores'][idx])
        if self.with_next:
            nxt = arr['next_index'][idx]
            has_next = nxt >= 0
            inputs['keypoints_2d_next'] = torch.from_numpy(
                arr['keypoints_2d'][np.where(has_next, nxt, idx)])
            if 'keypoint_scores' in arr:
                inputs['keypoint_scores_next'] = torch.from_numpy(
                    arr['keypoint_scores'][np.where(has_next, nxt, idx)])
            inputs['has_next'] = torch.from_numpy(has_next)
        if self.with_3d:
            has_3d = arr['has_3d'][idx] if 'has_3d' in arr else np.ones(len(idx), bool)
            # Rows without a label get zeros, so no 3D of an unlabelled row leaves the dataset.
            inputs['keypoints_3d'] = torch.from_numpy(
                arr['keypoints_3d'][idx] * has_3d[:, None, None])
            inputs['has_3d'] = torch.from_numpy(has_3d)
        batch: Dict[str, Any] = {'inputs': inputs, _BATCH_KEY: True}
        if self.test_mode:
            batch['data_samples'] = [self._data_sample(i) for i in idx]
        return batch

    def __getitem__(self, index: int) -> Dict[str, Any]:
        return single_sample(self.__getitems__([index]))

    def _data_sample(self, i: int) -> PoseDataSample:
        arr = self.arrays
        target = arr['keypoints_3d'][i][None]
        gt = InstanceData()
        gt.lifting_target = target
        gt.lifting_target_visible = np.ones(target.shape[:2], dtype=np.float32)
        gt.keypoints = arr['keypoints_2d'][i][None]
        sample = PoseDataSample(gt_instances=gt)
        sample.set_metainfo(
            dict(target_img_path=[str(arr['img_paths'][i])], sample_idx=int(i)))
        return sample


def single_sample(batch: Dict[str, Any]) -> Dict[str, Any]:
    """The only sample of a one-row batch from ``__getitems__`` (for ``__getitem__``)."""
    out = {'inputs': {k: v[0] for k, v in batch['inputs'].items()}}
    if 'data_samples' in batch:
        out['data_samples'] = batch['data_samples'][0]
    return out


@FUNCTIONS.register_module()
def unsup3d_collate(data_batch: Any, _scope_: Optional[str] = None) -> Dict[str, Any]:
    """Collate for :class:`PoseArrayDataset`.

    Accepts a batch already assembled by ``__getitems__`` (returned as is, minus the marker) or
    a list of single samples from ``__getitem__`` (stacked). ``_scope_`` is the registry scope
    MMEngine's Runner passes along with the config; it is not used.
    """
    if isinstance(data_batch, dict) and data_batch.get(_BATCH_KEY):
        return {k: v for k, v in data_batch.items() if k != _BATCH_KEY}
    if not isinstance(data_batch, (list, tuple)) or not data_batch:
        raise TypeError(f'unsup3d_collate: unexpected batch {type(data_batch)}')
    out: Dict[str, Any] = {
        'inputs': {
            k: torch.stack([s['inputs'][k] for s in data_batch])
            for k in data_batch[0]['inputs']
        }
    }
    if 'data_samples' in data_batch[0]:
        out['data_samples'] = [s['data_samples'] for s in data_batch]
    return out


def subsample_labelled(num: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask marking ``round(fraction * num)`` rows chosen with a fixed seed."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f'labelled fraction must be in [0, 1], got {fraction}')
    mask = np.zeros(num, dtype=bool)
    count = int(round(fraction * num))
    mask[np.random.default_rng(seed).permutation(num)[:count]] = True
    return mask


__all__: List[str] = ['PoseArrayDataset', 'unsup3d_collate', 'h36m_metainfo',
                      'subsample_labelled']
