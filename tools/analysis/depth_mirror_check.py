"""Diagnose the depth-mirror ambiguity of a trained lifter on a config's test split.

``python tools/analysis/depth_mirror_check.py CONFIG CHECKPOINT [--out mirror.json]``

Prints, in mm, N-MPJPE of the predictions as they are and with their root-relative depths
negated (the mirror image through the image plane, which reproduces the same 2D), and the
correlation between predicted and true root-relative depths. A run is called *mirrored* when
the negated depths fit better. This uses the test 3D and is a diagnostic for reports only: it
must not be used to pick or flip a model (that would be supervision).
"""
import argparse
import json
import os

import numpy as np
import torch
from mmengine.config import Config, DictAction


def n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean over samples of the per-joint error after the optimal scale of ``pred``."""
    scale = (pred * gt).sum((1, 2)) / np.maximum((pred * pred).sum((1, 2)), 1e-12)
    return float(np.linalg.norm(pred * scale[:, None, None] - gt, axis=-1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', help='write the numbers to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    from mmpose.registry import DATASETS
    from mmunsup3d.apis import init_lifter
    from mmunsup3d.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = init_lifter(cfg, args.checkpoint, device='cpu')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    kpts = torch.from_numpy(dataset.arrays['keypoints_2d'])
    scores = dataset.arrays.get('keypoint_scores')
    with torch.no_grad():
        pred = model.predict_3d(kpts, None if scores is None else torch.from_numpy(scores))
    pred = pred.numpy().astype(np.float64)
    gt = dataset.arrays['keypoints_3d'].astype(np.float64)
    gt = gt - gt[:, :1]
    mirrored = pred * np.array([1.0, 1.0, -1.0])
    result = dict(
        n_mpjpe_mm=1000 * n_mpjpe(pred, gt),
        n_mpjpe_depth_negated_mm=1000 * n_mpjpe(mirrored, gt),
        depth_correlation=float(np.corrcoef(pred[:, 1:, 2].ravel(), gt[:, 1:, 2].ravel())[0, 1]))
    result['mirrored'] = result['n_mpjpe_depth_negated_mm'] < result['n_mpjpe_mm']
    print(json.dumps(result, indent=1))
    if args.out:
        tmp = args.out + '.part'
        with open(tmp, 'w') as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, args.out)


if __name__ == '__main__':
    main()
