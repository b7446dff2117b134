"""Unlabelled 2D poses from COCO-format keypoint annotations, and a wrapper that mixes them in.

:class:`CocoKeypoints2DDataset` reads only the annotation JSON (MMPose ``CocoDataset`` layout:
top-level ``images``, ``annotations``, ``categories``); no image is opened. Every usable person
annotation becomes one row of COCO-17 pixel keypoints and scores. There is no 3D, so it can only
serve training data.

:class:`WithExtra2DDataset` wraps a training dataset and adds to each of its batches the same
number of 2D poses drawn at random from a second dataset (e.g. COCO-17 poses from another
domain), for losses that only need unpaired 2D (e.g. a 2D pose discriminator).
"""
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from mmpose.registry import DATASETS
from .mocap_dataset import resolve_data_file
from .pose_array_dataset import PoseArrayDataset, single_sample

__all__ = ['CocoKeypoints2DDataset', 'WithExtra2DDataset', 'coco_metainfo']


def coco_metainfo() -> dict:
    """MMPose's COCO-17 dataset meta (joint names, skeleton, flip pairs, sigmas)."""
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    import mmpose
    cfg = osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs', '_base_', 'datasets',
                   'coco.py')
    return parse_pose_metainfo(dict(from_file=cfg))


@DATASETS.register_module()
class CocoKeypoints2DDataset(PoseArrayDataset):
    """2D person keypoints (no images, no 3D) from a COCO-format keypoint annotation file.

    Each annotation is kept unless it is a crowd region (``iscrowd=1``) or has fewer than
    ``min_keypoints`` labelled joints (visibility ``v > 0``, counted from ``keypoints`` itself
    rather than trusting ``num_keypoints``). Rows:

    - ``keypoints_2d``: ``(N, K, 2)`` float32 pixel coordinates in the file's (COCO-17) order;
      unlabelled joints keep the coordinates the file gives (``0, 0`` in COCO);
    - ``keypoint_scores``: ``(N, K)`` float32, the annotation's optional ``keypoint_scores``
      list (detector confidences, as written by ``tools/dataset_converters/mocap_to_coco.py``)
      if present, else ``min(v, 1)``; joints with ``v == 0`` always score 0;
    - ``ann_ids``: ``(N,)`` int64 annotation ids (for tracing a row back to the file).

    Args:
        ann_file: COCO-format keypoint annotation JSON.
        data_root: optional folder ``ann_file`` is relative to (see ``resolve_data_file``).
        min_keypoints: skip annotations with fewer labelled joints.
        num_keypoints: joints per annotation (``keypoints`` must hold ``3 * num_keypoints``
            numbers).
        **kwargs: ``metainfo`` (default: MMPose's COCO meta) of :class:`PoseArrayDataset`.
            ``test_mode`` must be False (there is no 3D to evaluate against); ``with_3d`` and
            ``with_next`` make the base class raise ``KeyError`` (no 3D, no sequences).

    Raises:
        ValueError: ``test_mode=True``; malformed file (invalid JSON, no ``annotations``,
            keypoints of the wrong length, NaN/inf); no usable annotation.
        FileNotFoundError: ``ann_file`` does not exist.
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 min_keypoints: int = 1,
                 num_keypoints: int = 17,
                 **kwargs) -> None:
        if kwargs.get('test_mode', False):
            raise ValueError('CocoKeypoints2DDataset has no 3D ground truth and cannot be used '
                             'in test mode (test_mode=True)')
        if num_keypoints < 1:
            raise ValueError(f'num_keypoints must be >= 1, got {num_keypoints}')
        self.ann_file = resolve_data_file(ann_file, data_root)
        self.min_keypoints = min_keypoints
        self.num_keypoints = num_keypoints
        super().__init__(**kwargs)

    @property
    def metainfo(self) -> dict:
        if self._metainfo is None:
            self._metainfo = coco_metainfo()
        return self._metainfo

    def _read_json(self) -> Dict[str, Any]:
        try:
            with open(self.ann_file, 'r', encoding='utf-8') as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{self.ann_file} is not valid JSON: {e}') from e
        if not isinstance(data, dict) or 'annotations' not in data:
            raise ValueError(f'{self.ann_file} has no "annotations" key (not a COCO-format '
                             'annotation file)')
        if not isinstance(data['annotations'], list):
            raise ValueError(f'{self.ann_file}: "annotations" must be a list, got '
                             f'{type(data["annotations"]).__name__}')
        return data

    def load_arrays(self) -> Dict[str, np.ndarray]:
        k = self.num_keypoints
        kpts: List[np.ndarray] = []
        scores: List[np.ndarray] = []
        ids: List[int] = []
        for pos, ann in enumerate(self._read_json()['annotations']):
            ann_id = ann.get('id', f'#{pos}') if isinstance(ann, dict) else f'#{pos}'
            where = f'{self.ann_file}, annotation id {ann_id}'
            if not isinstance(ann, dict) or 'keypoints' not in ann:
                raise ValueError(f'{where}: no "keypoints" field')
            if ann.get('iscrowd', 0):
                continue
            try:
                raw = np.asarray(ann['keypoints'], dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise ValueError(f'{where}: keypoints are not numbers ({e})') from e
            if raw.shape != (3 * k, ):
                raise ValueError(f'{where}: keypoints must be a flat list of {3 * k} numbers '
                                 f'({k} x [x, y, v]), got shape {raw.shape}')
            if not np.isfinite(raw).all():
                raise ValueError(f'{where}: keypoints contain NaN or inf')
            raw = raw.reshape(k, 3)
            labelled = raw[:, 2] > 0
            if labelled.sum() < self.min_keypoints:
                continue
            if ann.get('keypoint_scores') is not None:
                try:
                    sc = np.asarray(ann['keypoint_scores'], dtype=np.float64)
                except (TypeError, ValueError) as e:
                    raise ValueError(f'{where}: keypoint_scores are not numbers ({e})') from e
                if sc.shape != (k, ):
                    raise ValueError(f'{where}: keypoint_scores must hold {k} numbers, got '
                                     f'shape {sc.shape}')
                if not np.isfinite(sc).all():
                    raise ValueError(f'{where}: keypoint_scores contain NaN or inf')
            else:
                sc = np.minimum(raw[:, 2], 1.0)
            kpts.append(raw[:, :2])
            scores.append(np.where(labelled, sc, 0.0))
            ids.append(int(ann_id) if isinstance(ann_id, (int, np.integer)) else -1)
        if not kpts:
            raise ValueError(f'{self.ann_file}: no usable annotations (all are crowd regions or '
                             f'have fewer than min_keypoints={self.min_keypoints} labelled '
                             'joints)')
        return dict(
            keypoints_2d=np.stack(kpts).astype(np.float32),
            keypoint_scores=np.stack(scores).astype(np.float32),
            ann_ids=np.asarray(ids, dtype=np.int64))


@DATASETS.register_module()
class WithExtra2DDataset(Dataset):
    """A training dataset whose batches also carry unpaired 2D poses from a second dataset.

    ``__getitems__(indices)`` returns the wrapped dataset's batch for ``indices`` unchanged, plus

    - ``inputs['extra_keypoints_2d']``: ``(B, J, 2)`` float32 tensor,
    - ``inputs['extra_keypoint_scores']``: ``(B, J)`` float32 tensor (ones if the extra dataset
      has no scores),

    rows of ``extra`` drawn uniformly at random with replacement, independently of ``indices``
    (there is no correspondence between the main and the extra rows).

    Randomness: in the main process a ``np.random.Generator`` seeded with ``seed`` is advanced
    by every call, so a given sequence of calls always gets the same extra rows. Inside a
    ``DataLoader`` worker the generator is re-seeded once per worker from ``(seed,
    worker_info.seed)``; torch derives ``worker_info.seed`` from its own seed, so workers do not
    repeat each other's draws and runs stay reproducible under a fixed torch seed.

    Args:
        dataset: the main dataset or its config (built with ``DATASETS.build``).
        extra: the dataset the extra 2D rows come from, or its config; must be a training-mode
            dataset with an ``__getitems__`` batch interface (e.g. :class:`PoseArrayDataset`).
        seed: seed of the extra-row draws.

    Raises:
        ValueError: the extra dataset is in test mode or empty.
    """

    def __init__(self,
                 dataset: Union[dict, Dataset],
                 extra: Union[dict, Dataset],
                 seed: int = 0) -> None:
        super().__init__()
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.extra = DATASETS.build(extra) if isinstance(extra, dict) else extra
        if getattr(self.extra, 'test_mode', False):
            raise ValueError('WithExtra2DDataset: the extra dataset must not be in test mode '
                             f'({type(self.extra).__name__} has test_mode=True)')
        if len(self.extra) == 0:
            raise ValueError('WithExtra2DDataset: the extra dataset is empty')
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._rng_key: Optional[tuple] = None  # None: main process

    @property
    def metainfo(self) -> dict:
        """The main dataset's meta."""
        return self.dataset.metainfo

    def __len__(self) -> int:
        return len(self.dataset)

    def _generator(self) -> np.random.Generator:
        info = get_worker_info()
        key = None if info is None else (info.id, int(info.seed))
        if key != self._rng_key:
            self._rng = np.random.default_rng([self.seed, int(info.seed) % (2**63)])
            self._rng_key = key
        return self._rng

    def get_rng_state(self) -> Dict[str, Any]:
        """The extra-row generator's state (stored in checkpoints by ``RNGStateHook``).

        Returns:
            ``{'bit_generator': {...}}``: NumPy's ``bit_generator.state`` dict (strings and
            ints only, so it passes ``torch.load(weights_only=True)``). Inside a DataLoader
            worker this is that worker's copy; the main process's copy is what a checkpoint
            stores, since workers are re-seeded from the torch seed (see the class doc).
        """
        return dict(bit_generator=self._rng.bit_generator.state)

    def set_rng_state(self, state: Dict[str, Any]) -> None:
        """Restore a state from :meth:`get_rng_state` (main process: the next draws repeat).

        Raises:
            KeyError: ``state`` has no ``bit_generator`` entry.
            ValueError: the state is for another bit generator than this one's
                (``default_rng``: PCG64) or is malformed.
        """
        if not isinstance(state, dict) or 'bit_generator' not in state:
            raise KeyError('WithExtra2DDataset.set_rng_state: expected a dict with a '
                           f'"bit_generator" entry, got {state!r:.200}')
        rng = np.random.default_rng(self.seed)
        try:
            rng.bit_generator.state = state['bit_generator']
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError('WithExtra2DDataset.set_rng_state: cannot restore the extra-row '
                             f'generator ({type(rng.bit_generator).__name__}) from '
                             f'{state["bit_generator"]!r:.200}: {e}') from e
        # Only now, so a failed restore leaves the current generator untouched; the key marks
        # it as the main process's generator (a worker re-seeds its own on first use).
        self._rng, self._rng_key = rng, None

    def _extra_rows(self, rows: np.ndarray) -> Dict[str, torch.Tensor]:
        arrays = getattr(self.extra, 'arrays', None)
        if isinstance(arrays, dict) and 'keypoints_2d' in arrays:
            kpts = arrays['keypoints_2d'][rows]
            scores = arrays.get('keypoint_scores')
            scores = scores[rows] if scores is not None else None
            kpts = torch.from_numpy(np.ascontiguousarray(kpts, dtype=np.float32))
            scores = None if scores is None else torch.from_numpy(
                np.ascontiguousarray(scores, dtype=np.float32))
        else:
            inputs = self.extra.__getitems__(rows.tolist())['inputs']
            kpts = inputs['keypoints_2d'].float()
            scores = inputs.get('keypoint_scores')
            scores = None if scores is None else scores.float()
        if scores is None:
            scores = torch.ones(kpts.shape[:2], dtype=torch.float32)
        return dict(extra_keypoints_2d=kpts, extra_keypoint_scores=scores)

    def __getitems__(self, indices: Sequence[int]) -> Dict[str, Any]:
        batch = self.dataset.__getitems__(indices)
        rows = self._generator().integers(0, len(self.extra), size=len(indices))
        batch['inputs'].update(self._extra_rows(rows))
        return batch

    def __getitem__(self, index: int) -> Dict[str, Any]:
        return single_sample(self.__getitems__([index]))
