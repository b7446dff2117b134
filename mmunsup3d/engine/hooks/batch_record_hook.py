"""Record fingerprints of the training batches each rank sees (to verify data sharding)."""
import hashlib
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook

from mmpose.registry import HOOKS


def _fingerprint(array: np.ndarray) -> str:
    """sha1 of an array's dtype, shape and bytes."""
    h = hashlib.sha1()
    h.update(f'{array.dtype.str}{array.shape}'.encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


@HOOKS.register_module()
class BatchRecordHook(Hook):
    """Write, per rank, fingerprints of every training batch to ``out_dir/rank{r}.json``.

    For each batch the hook stores the epoch, the iteration, the batch size, a sha1 of the whole
    ``inputs[key]`` tensor and one sha1 per sample (row), so tests can check that the ranks of a
    distributed run saw disjoint parts of the data (``DefaultSampler`` sharding), or that two
    runs saw the same samples. The file is rewritten after every epoch and at the end of
    training. Use it in a config or on the command line::

        custom_hooks = [dict(type='BatchRecordHook', out_dir='work_dirs/x/batches')]

    Args:
        out_dir: output folder; ``None`` means ``<work_dir>/batch_records``.
        key: the entry of ``data_batch['inputs']`` to fingerprint.
        row_hashes: also store one hash per sample.
        max_batches: stop recording after this many batches (``None``: all).
    """

    priority = 'VERY_LOW'

    def __init__(self,
                 out_dir: Optional[str] = None,
                 key: str = 'keypoints_2d',
                 row_hashes: bool = True,
                 max_batches: Optional[int] = None) -> None:
        self.out_dir = out_dir
        self.key = key
        self.row_hashes = row_hashes
        self.max_batches = max_batches
        self.records: List[Dict[str, Any]] = []

    def _path(self, runner) -> str:
        out_dir = self.out_dir if self.out_dir is not None else osp.join(
            runner.work_dir, 'batch_records')
        return osp.join(out_dir, f'rank{get_rank()}.json')

    def before_train(self, runner) -> None:
        """Start a fresh record."""
        self.records = []

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        """Fingerprint the batch about to be trained on."""
        if data_batch is None or (self.max_batches is not None
                                  and len(self.records) >= self.max_batches):
            return
        inputs = data_batch.get('inputs', data_batch) if isinstance(data_batch, dict) else None
        if not isinstance(inputs, dict) or self.key not in inputs:
            raise KeyError(f'BatchRecordHook: data_batch["inputs"] has no "{self.key}"')
        value = inputs[self.key]
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else \
            np.asarray(value)
        record: Dict[str, Any] = dict(
            epoch=runner.epoch, iter=runner.iter, batch_idx=batch_idx, size=int(array.shape[0]),
            sha1=_fingerprint(array))
        if self.row_hashes:
            record['rows'] = [_fingerprint(row) for row in array]
        self.records.append(record)

    def _dump(self, runner) -> None:
        path = self._path(runner)
        os.makedirs(osp.dirname(path), exist_ok=True)
        tmp = f'{path}.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(dict(rank=get_rank(), world_size=get_world_size(), key=self.key,
                           batches=self.records), f)
        os.replace(tmp, path)

    def after_train_epoch(self, runner) -> None:
        """Write what was recorded so far (survives an interrupted run)."""
        self._dump(runner)

    def after_train(self, runner) -> None:
        """Write the complete record."""
        self._dump(runner)
