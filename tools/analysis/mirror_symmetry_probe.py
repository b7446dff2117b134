"""How left/right symmetric are lifts built from the *true* vs. the *mirrored* depths?

``python tools/analysis/mirror_symmetry_probe.py [--config CONFIG] [--c 10]``

For every test pose of the config's test split (default: the embedded mocap), the normalised 2D
(as the model sees it) is lifted with ``z = c + d`` where ``d`` is the true root-relative depth
in model units (the pose rescaled to the model's RMS size, 0.65), with ``-d`` (the depth mirror
image, which reproduces the same 2D) and with ``d = 0`` (flat). Prints the mean left/right
bone-length asymmetry (:func:`mmunsup3d.models.bone_asymmetry`) of each. Uses test 3D: an
analysis of the prior, not a training signal.
"""
import argparse

import torch
from mmengine.config import Config

DEFAULT_CONFIG = 'configs/unsup3d/unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--c', type=float, default=10.0, help="the model's depth offset")
    args = parser.parse_args()

    from mmpose.registry import DATASETS
    from mmunsup3d.models import bone_asymmetry, lift_to_3d, normalize_2d
    from mmunsup3d.utils import register_all_modules
    register_all_modules()
    dataset = DATASETS.build(Config.fromfile(args.config).test_dataloader.dataset)
    kpts = torch.from_numpy(dataset.arrays['keypoints_2d']).double()
    gt = torch.from_numpy(dataset.arrays['keypoints_3d']).double()
    gt = gt - gt[:, :1]
    x, _ = normalize_2d(kpts, c=args.c, mode='rms')
    size = gt.pow(2).sum(-1).mean(-1).sqrt()  # RMS size in metres
    depth = gt[..., 2] * (0.65 / size)[:, None]  # model units: RMS size 0.65
    for name, d in (('true depths', depth), ('mirrored depths', -depth),
                    ('flat', torch.zeros_like(depth))):
        pose = lift_to_3d(x, d, args.c, min_depth=1e-3)
        print(f'{name:16s} asymmetry {bone_asymmetry(pose).mean().item():.4f}')
    print(f'({len(kpts)} poses, c = {args.c})')


if __name__ == '__main__':
    main()
