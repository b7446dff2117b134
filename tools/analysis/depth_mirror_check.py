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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', help='write the numbers to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    from mmpose.registry import DATASETS
    from mmunsup3d.apis import init_lifter
    from mmunsup3d.models import scale_aligned_error
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
    pred = pred.double()
    gt = torch.from_numpy(dataset.arrays['keypoints_3d']).double()
    gt = gt - gt[:, :1]
    mirrored = pred * torch.tensor([1.0, 1.0, -1.0], dtype=pred.dtype)

    def n_mpjpe_mm(p: torch.Tensor) -> float:
        return 1000 * scale_aligned_error(p, gt).mean().item()

    result = dict(
        n_mpjpe_mm=n_mpjpe_mm(pred),
        n_mpjpe_depth_negated_mm=n_mpjpe_mm(mirrored),
        depth_correlation=float(np.corrcoef(pred[:, 1:, 2].numpy().ravel(),
                                            gt[:, 1:, 2].numpy().ravel())[0, 1]))
    result['mirrored'] = result['n_mpjpe_depth_negated_mm'] < result['n_mpjpe_mm']
    print(json.dumps(result, indent=1))
    if args.out:
        tmp = args.out + '.part'
        with open(tmp, 'w') as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, args.out)


if __name__ == '__main__':
    main()
