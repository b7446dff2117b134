"""Export an unsupervised lifter to ONNX: pixel 2D keypoints -> root-relative 3D.

``python tools/deployment/export_onnx.py CONFIG CKPT OUT.onnx [--opset 17]``

``CONFIG`` is a config path or a zoo name; ``CKPT`` a checkpoint path, zoo name or
``http(s)://`` / ``file://`` URL (downloaded and sha256-verified). The graph takes
``keypoints_2d`` of shape ``(B, J, 2)`` (pixels, Human3.6M-17 order) and returns ``pose_3d`` of
shape ``(B, J, 3)``, exactly what :func:`mmunsup3d.apis.lift_keypoints` returns: 2D
normalisation, the lifter, the lifting geometry, root-centring and the optional
``test_cfg.output_head_root`` rescale are all in the graph. The batch axis is dynamic. The file
is written to a temporary name and moved into place only once the export succeeded.
"""
import argparse
import os
import os.path as osp
import tempfile
import warnings
from typing import Optional, Union

import torch
from mmengine.config import Config
from torch import Tensor, nn

from mmunsup3d.models.geometry import lift_to_3d, normalize_2d, root_center

__all__ = ['LifterForExport', 'export_onnx']


class LifterForExport(nn.Module):
    """The inference path of :class:`Unsup3DLifter` as a plain, traceable module.

    Mirrors ``Unsup3DLifter.predict_3d`` (which is wrapped in ``torch.no_grad`` and checks
    shapes in Python) without the training-only parts (discriminators, augmentation).

    Args:
        model: a model from :func:`mmunsup3d.apis.init_lifter`.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.lifter = model.lifter
        self.root_idx = int(model.root_idx)
        self.head_idx = int(model.head_idx)
        self.depth_offset = float(model.depth_offset)
        self.min_depth = float(model.min_depth)
        self.scale_mode = model.scale_mode
        head_root = (getattr(model, 'test_cfg', None) or {}).get('output_head_root')
        self.head_root: Optional[float] = float(head_root) if head_root else None

    def forward(self, keypoints_2d: Tensor) -> Tensor:
        """``(B, J, 2)`` pixels -> ``(B, J, 3)`` root-relative camera-frame 3D."""
        x, _ = normalize_2d(keypoints_2d, self.root_idx, self.head_idx, self.depth_offset,
                            mode=self.scale_mode)
        pose = root_center(lift_to_3d(x, self.lifter(x), self.depth_offset, self.min_depth),
                           self.root_idx)
        if self.head_root is not None:
            dist = pose[:, self.head_idx].norm(dim=-1).clamp_min(1e-8)
            pose = pose * (self.head_root / dist)[:, None, None]
        return pose


def export_onnx(config: Union[str, Config], checkpoint: Optional[str], out_file: str,
                opset: int = 17) -> str:
    """Build the lifter, export it and return the absolute path of the ``.onnx`` file.

    Args:
        config: config path, :class:`mmengine.config.Config` or zoo name.
        checkpoint: checkpoint path, zoo name or URL (``None`` with a zoo-name config uses the
            zoo weights).
        out_file: destination ``.onnx`` path.
        opset: ONNX opset version.

    Raises:
        UnsafeCheckpointError, RuntimeError, CheckpointMismatchError: the checkpoint is
            refused by :func:`mmunsup3d.apis.init_lifter` (outside the allow-list, corrupt, or
            a lifter that does not fit the config); nothing is written then.
    """
    from mmunsup3d.apis import init_lifter
    model = init_lifter(config, checkpoint, device='cpu')
    wrapper = LifterForExport(model).eval()
    num_joints = int(getattr(model, 'num_keypoints', 17))
    dummy = torch.randn(2, num_joints, 2) * 100 + 500
    out_file = osp.abspath(out_file)
    out_dir = osp.dirname(out_file)
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.onnx.part', dir=out_dir)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore')  # TorchScript-exporter deprecation / tracer notes
            torch.onnx.export(
                wrapper, (dummy, ), tmp, dynamo=False, opset_version=opset,
                input_names=['keypoints_2d'], output_names=['pose_3d'],
                dynamic_axes={'keypoints_2d': {0: 'batch'}, 'pose_3d': {0: 'batch'}},
                do_constant_folding=True)
        import onnx
        onnx.checker.check_model(onnx.load(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_file)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return out_file


def main() -> None:
    parser = argparse.ArgumentParser(description='Export an unsupervised lifter to ONNX')
    parser.add_argument('config', help='config path or zoo name')
    parser.add_argument('checkpoint', help='checkpoint path, zoo name or http(s)/file URL')
    parser.add_argument('out_file', help='output .onnx path')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset version')
    args = parser.parse_args()
    print(export_onnx(args.config, args.checkpoint, args.out_file, args.opset))


if __name__ == '__main__':
    main()
