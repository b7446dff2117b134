"""Export an unsupervised lifter to ONNX: pixel 2D keypoints (+ scores) -> root-relative 3D.

``python tools/deployment/export_onnx.py CONFIG CKPT OUT.onnx [--opset 17]``

``CONFIG`` is a config path or a zoo name; ``CKPT`` a checkpoint path, zoo name or
``http(s)://`` / ``file://`` URL (downloaded and sha256-verified). Every zoo model exports
(``checkpoints/``: lifters of 2 and of 3 input channels).

Graph inputs and output (``B`` is dynamic, ``J`` = 17 joints in Human3.6M-17 order):

- ``keypoints_2d`` ``(B, J, 2)`` float32 pixels;
- ``keypoint_scores`` ``(B, J)`` float32 confidences in ``[0, 1]``: **only** for a
  confidence-aware lifter (``ResidualLifter(in_channels=3)``, x, y, score per joint). The scores
  are a second input rather than a third channel of ``keypoints_2d`` so that the first input has
  the same meaning and shape for every model and the pair mirrors
  ``lift_keypoints(model, keypoints, scores)``. A 2-channel model's graph has no such input;
- ``pose_3d`` ``(B, J, 3)`` float32: exactly what :func:`mmunsup3d.apis.lift_keypoints`
  returns (2D normalisation, the lifter, the lifting geometry, root-centring and the optional
  ``test_cfg.output_head_root`` rescale are all in the graph).

Empty batches: the graph itself answers ``B = 0`` with an empty ``(0, J, 3)`` output (the
lifter's MLP is traced with a ``Flatten`` instead of ``ResidualLifter.forward``'s
``reshape(B, -1)``, which onnxruntime cannot resolve for zero rows). :func:`run_onnx` is a
checked way to call an exported file: it validates shapes, fills scores of 1 when a
confidence-aware graph gets none (as ``lift_keypoints`` does) and returns ``(0, J, 3)`` for no
poses.

The file is written to a temporary name and moved into place only once the export and
``onnx.checker`` succeeded.
"""
import argparse
import os
import os.path as osp
import tempfile
import warnings
from typing import Any, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from torch import Tensor, nn

from mmunsup3d.models.geometry import lift_to_3d, normalize_2d, root_center

__all__ = ['LifterForExport', 'export_onnx', 'run_onnx', 'INPUT_NAMES', 'OUTPUT_NAME']

#: Graph input names: 2D keypoints, and (confidence-aware lifters only) per-joint scores.
INPUT_NAMES = ('keypoints_2d', 'keypoint_scores')
OUTPUT_NAME = 'pose_3d'


class LifterForExport(nn.Module):
    """The inference path of :class:`Unsup3DLifter` as a plain, traceable module.

    Mirrors ``Unsup3DLifter.predict_3d`` (which is wrapped in ``torch.no_grad`` and checks
    shapes in Python) without the training-only parts (discriminators, augmentation).

    Args:
        model: a model from :func:`mmunsup3d.apis.init_lifter`.

    Raises:
        ValueError: the lifter predicts more than one value per joint (not a depth lifter).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.lifter = model.lifter
        out_channels = getattr(self.lifter, 'out_channels', 1)
        if out_channels != 1:
            raise ValueError(f'Only depth lifters (one output per joint) can be exported, got '
                             f'a lifter with out_channels={out_channels}')
        self.use_scores = bool(getattr(model, 'use_scores', False))
        self.num_joints = int(getattr(model, 'num_keypoints', 17))
        self.root_idx = int(model.root_idx)
        self.head_idx = int(model.head_idx)
        self.depth_offset = float(model.depth_offset)
        self.min_depth = float(model.min_depth)
        self.scale_mode = model.scale_mode
        head_root = (getattr(model, 'test_cfg', None) or {}).get('output_head_root')
        self.head_root: Optional[float] = float(head_root) if head_root else None

    def _depths(self, inp: Tensor) -> Tensor:
        """``(B, J, C)`` lifter input -> ``(B, J)`` depth offsets.

        The residual MLP is applied layer by layer on ``inp.flatten(1)``: its ``forward``
        flattens with ``reshape(B, -1)``, which exports as an ONNX ``Reshape`` to ``[B, -1]``
        that onnxruntime refuses for ``B = 0``; ``Flatten`` has no such ambiguity.
        """
        lifter = self.lifter
        if all(hasattr(lifter, name) for name in ('stem', 'blocks', 'out')) and \
                lifter.out is not None:
            return lifter.out(lifter.blocks(lifter.stem(inp.flatten(1))))
        return lifter(inp)  # other lifters (e.g. the parameter-free flat-depth baseline)

    def forward(self, keypoints_2d: Tensor, keypoint_scores: Optional[Tensor] = None) -> Tensor:
        """Lift a batch.

        Args:
            keypoints_2d: ``(B, J, 2)`` pixels.
            keypoint_scores: ``(B, J)`` confidences; used (and required in the graph) by a
                confidence-aware lifter, ignored otherwise. ``None`` = all 1, as in
                ``BaseDepthLifter.lift``.

        Returns:
            ``(B, J, 3)`` root-relative camera-frame 3D.
        """
        x, _ = normalize_2d(keypoints_2d, self.root_idx, self.head_idx, self.depth_offset,
                            mode=self.scale_mode)
        inp = x
        if self.use_scores:
            scores = x.new_ones(x.shape[:-1]) if keypoint_scores is None else \
                keypoint_scores.to(x.dtype)
            inp = torch.cat([x, scores.unsqueeze(-1)], -1)
        pose = root_center(lift_to_3d(x, self._depths(inp), self.depth_offset, self.min_depth),
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

    Returns:
        The absolute path of the written file; its inputs are ``keypoints_2d`` and, for a
        confidence-aware (3-channel) lifter, ``keypoint_scores`` (see the module doc).

    Raises:
        UnsafeCheckpointError, RuntimeError, CheckpointMismatchError: the checkpoint is
            refused by :func:`mmunsup3d.apis.init_lifter` (outside the allow-list, corrupt, or
            a lifter that does not fit the config); nothing is written then.
        ValueError: the lifter is not a depth lifter (see :class:`LifterForExport`).
    """
    from mmunsup3d.apis import init_lifter
    model = init_lifter(config, checkpoint, device='cpu')
    wrapper = LifterForExport(model).eval()
    num_joints = wrapper.num_joints
    # Batch 2 for tracing: the batch axis is made dynamic below (BatchNorm in eval mode does
    # not care about the traced size).
    generator = torch.Generator().manual_seed(0)
    dummy: Tuple[Tensor, ...] = (torch.randn(2, num_joints, 2, generator=generator) * 100 + 500, )
    names = [INPUT_NAMES[0]]
    if wrapper.use_scores:
        dummy = dummy + (torch.rand(2, num_joints, generator=generator), )
        names.append(INPUT_NAMES[1])
    dynamic_axes = {name: {0: 'batch'} for name in names + [OUTPUT_NAME]}
    out_file = osp.abspath(out_file)
    out_dir = osp.dirname(out_file)
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.onnx.part', dir=out_dir)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore')  # TorchScript-exporter deprecation / tracer notes
            torch.onnx.export(
                wrapper, dummy, tmp, dynamo=False, opset_version=opset, input_names=names,
                output_names=[OUTPUT_NAME], dynamic_axes=dynamic_axes,
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


def _float_array(value: Any, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in 'iuf':
        raise ValueError(f'{what} must be real numbers, got dtype {arr.dtype}')
    return np.ascontiguousarray(arr, dtype=np.float32)


def run_onnx(session: Any, keypoints: Any, scores: Optional[Any] = None) -> np.ndarray:
    """Run an exported lifter on ``(N, J, 2)`` pixel keypoints, checking the inputs first.

    Args:
        session: an ``onnxruntime.InferenceSession`` or the path of an exported ``.onnx`` file.
        keypoints: ``(N, J, 2)`` pixels (array-like); ``N = 0`` is allowed.
        scores: optional ``(N, J)`` confidences in ``[0, 1]``. A confidence-aware graph (with a
            ``keypoint_scores`` input) gets all 1 when omitted; a 2-channel graph ignores them,
            both exactly as :func:`mmunsup3d.apis.lift_keypoints`.

    Returns:
        ``(N, J, 3)`` float32 root-relative 3D (``(0, J, 3)`` for no poses).

    Raises:
        ValueError: keypoints not of shape ``(N, J, 2)`` for the graph's ``J``, non-numeric or
            non-finite values, or scores of another shape or outside ``[0, 1]``.
    """
    if isinstance(session, (str, os.PathLike)):
        import onnxruntime as ort
        session = ort.InferenceSession(os.fspath(session), providers=['CPUExecutionProvider'])
    inputs = {i.name: i for i in session.get_inputs()}
    if INPUT_NAMES[0] not in inputs:
        raise ValueError(f'The ONNX graph has no "{INPUT_NAMES[0]}" input (inputs: '
                         f'{sorted(inputs)}); was it written by export_onnx?')
    joints = inputs[INPUT_NAMES[0]].shape[1]
    kpts = _float_array(keypoints, 'keypoints')
    if kpts.ndim != 3 or kpts.shape[2] != 2 or (isinstance(joints, int)
                                                 and kpts.shape[1] != joints):
        raise ValueError(f'keypoints must have shape (N, {joints}, 2) (pixels), got '
                         f'{kpts.shape}')
    if not np.isfinite(kpts).all():
        raise ValueError('keypoints contain NaN or inf')
    feed = {INPUT_NAMES[0]: kpts}
    if INPUT_NAMES[1] in inputs:
        sc = np.ones(kpts.shape[:2], np.float32) if scores is None else \
            _float_array(scores, 'scores')
        if sc.shape != kpts.shape[:2]:
            raise ValueError(f'scores must have shape {kpts.shape[:2]}, got {sc.shape}')
        if not np.isfinite(sc).all():
            raise ValueError('scores contain NaN or inf')
        if ((sc < 0) | (sc > 1)).any():
            raise ValueError(f'scores must lie in [0, 1], got values in [{sc.min():g}, '
                             f'{sc.max():g}]')
        feed[INPUT_NAMES[1]] = sc
    if len(kpts) == 0:
        # No poses, no run: also right for graphs exported before the graph itself handled
        # B = 0 (their Reshape fails inside onnxruntime).
        return np.zeros((0, kpts.shape[1], 3), np.float32)
    return session.run([OUTPUT_NAME], feed)[0].astype(np.float32, copy=False)


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
