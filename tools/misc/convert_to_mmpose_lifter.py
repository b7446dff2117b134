"""Convert an unsupervised ``Unsup3DLifter`` checkpoint to an MMPose ``PoseLifter`` checkpoint.

Usage::

    python tools/misc/convert_to_mmpose_lifter.py IN_CKPT OUT_CKPT \
        [--config UNSUP_CONFIG] [--out-config OUT_CONFIG.py] [--data-root DIR]

The result is a plain MMPose model: ``PoseLifter(backbone=ResidualLifter(as_backbone=True),
head=DepthLiftingHead(decoder=PerspectiveDepthLifting))``. The backbone takes the lifter's
weights (``lifter.stem/blocks``), the head's linear layer takes ``lifter.out``, and the codec
reproduces the unsupervised model's 2D normalisation and perspective back-projection, so that
``mmpose.apis.init_model`` + ``inference_pose_lifter_model`` (or ``tools/test.py`` on a
Human3.6M-layout dataset) give the same 3D as ``mmunsup3d.apis.lift_keypoints``. The
discriminator(s) and optimizer states are dropped.

Without ``--config`` the training config stored in the checkpoint's ``meta.cfg`` (written by
MMEngine's Runner) is used. ``--out-config`` defaults to ``OUT_CKPT`` with a ``.py`` suffix.

The output config is what MMPose's tools read, as they are: ``init_model`` /
``inference_pose_lifter_model``, ``MMPoseInferencer(pose3d=CONFIG, pose3d_weights=CKPT)`` /
``Pose3DInferencer`` (``test_dataloader.dataset``: ``pipeline``, ``seq_len``, ``causal``;
``visualizer``: MMPose's ``Pose3dLocalVisualizer``; the Human3.6M ``dataset_meta`` with its
``stats_info`` is stored in the checkpoint) and ``tools/test.py``. Confidence-aware lifters
(``in_channels=3``) get a codec with ``concat_vis=True``: the 2D scores are read from
``keypoints_visible``, where MMPose's mocap datasets put them.
"""
import argparse
import os
import os.path as osp
from typing import Dict, Optional

import torch
from mmengine.config import Config

# Modules the generated config must import to build the converted model, and the Matplotlib
# shim MMPose's 3D visualizer needs with Matplotlib >= 3.10 (listed so that a pure-MMPose
# process, which never imports mmunsup3d itself, gets it).
CUSTOM_IMPORTS = ['mmunsup3d', 'mmunsup3d.codecs', 'mmunsup3d.models.heads',
                  'mmunsup3d.visualization']
# Runtime settings copied from the source config when present. The visualizer is not: the
# source's MMEngine ``Visualizer`` lacks ``set_dataset_meta``, which MMPose's inferencers call.
RUNTIME_KEYS = ('default_hooks', 'env_cfg', 'log_processor', 'log_level', 'randomness')
# MMPose's 3D pose visualizer, as in MMPose's body_3d_keypoint configs.
VIS_BACKENDS = [dict(type='LocalVisBackend')]
VISUALIZER = dict(type='Pose3dLocalVisualizer', name='visualizer', vis_backends=VIS_BACKENDS)
# MMPose's Human36mDataset, but reading cameras.pkl with the restricted unpickler (MMPose's
# own class unpickles it unrestricted); registered by importing mmunsup3d (custom_imports).
DATASET_TYPE = 'SafeHuman36mDataset'
# Channels per joint of the lifters that can be converted: (x, y), or (x, y, score).
CONVERTIBLE_IN_CHANNELS = (2, 3)
# Lifter arguments carried over to the backbone.
LIFTER_KEYS = ('num_keypoints', 'in_channels', 'width', 'num_blocks', 'dropout', 'use_bn')
# ``PackPoseInputs`` meta keys: MMPose's lifting keys plus the normalised 2D input.
META_KEYS = ('id', 'category_id', 'target_img_path', 'flip_indices', 'target_root',
             'norm_keypoints_2d')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an Unsup3DLifter checkpoint to an MMPose PoseLifter checkpoint')
    parser.add_argument('in_ckpt', help='Unsup3DLifter checkpoint (training or published)')
    parser.add_argument('out_ckpt', help='output MMPose PoseLifter checkpoint')
    parser.add_argument('--config', help='config of the Unsup3DLifter (default: the one '
                        'stored in the checkpoint meta)')
    parser.add_argument('--out-config', help='output MMPose config (default: OUT_CKPT with '
                        'a .py suffix)')
    parser.add_argument('--data-root', default='data/h36m_fixture/',
                        help='Human3.6M-layout data root written into the output config')
    return parser.parse_args()


def load_source_config(checkpoint: dict, config: Optional[str]) -> Config:
    """The Unsup3DLifter config: ``config`` if given, else the checkpoint's ``meta.cfg``."""
    if config is not None:
        if not osp.isfile(config):
            raise FileNotFoundError(f'Config not found: {config}')
        return Config.fromfile(config)
    text = checkpoint.get('meta', {}).get('cfg') if isinstance(checkpoint, dict) else None
    if not text:
        raise ValueError('The checkpoint stores no config (meta.cfg); pass --config')
    return Config.fromstring(text, file_format='.py')


def build_mmpose_config(src: Config, data_root: str = 'data/h36m_fixture/') -> Config:
    """MMPose ``PoseLifter`` config equivalent to the test-time ``Unsup3DLifter`` of ``src``.

    Args:
        src: config whose ``model`` is an ``Unsup3DLifter`` with a ``ResidualLifter``.
        data_root: Human3.6M-layout root (``annotation_body3d/fps50/h36m_test.npz``) used by
            the test/val dataloaders of the output config.

    Returns:
        A config with ``model``, ``codec``, test/val pipelines, dataloaders
        (``SafeHuman36mDataset``: MMPose's ``Human36mDataset`` reading ``cameras.pkl`` with the
        restricted unpickler), ``MPJPE`` evaluators, MMPose's ``Pose3dLocalVisualizer`` and
        the source runtime settings. A lifter with ``in_channels=3`` gets a codec with
        ``concat_vis=True`` (scores from ``keypoints_visible``).

    Raises:
        ValueError: the source model cannot be expressed as a ``PoseLifter``.
    """
    model = src.get('model')
    if model is None or model.get('type') != 'Unsup3DLifter':
        raise ValueError('Expected a config with model.type="Unsup3DLifter", got '
                         f'{None if model is None else model.get("type")!r}')
    lifter = model.get('lifter', {})
    if lifter.get('type') != 'ResidualLifter':
        raise ValueError(f'Only ResidualLifter lifters can be converted, got '
                         f'{lifter.get("type")!r}')
    in_channels = lifter.get('in_channels', 2)
    if in_channels not in CONVERTIBLE_IN_CHANNELS:
        raise ValueError('Only lifters of (x, y) (in_channels=2) or (x, y, score) '
                         f'(in_channels=3) keypoints can be converted, got '
                         f'in_channels={in_channels!r}')
    num_keypoints = lifter.get('num_keypoints', model.get('num_keypoints', 17))
    if num_keypoints != model.get('num_keypoints', 17):
        raise ValueError(f'lifter.num_keypoints ({num_keypoints}) != model.num_keypoints '
                         f'({model.get("num_keypoints", 17)})')
    backbone = dict(type='ResidualLifter', as_backbone=True)
    backbone.update({k: lifter[k] for k in LIFTER_KEYS if k in lifter})
    backbone['num_keypoints'] = num_keypoints
    width = backbone.get('width', 1024)
    codec = dict(
        type='PerspectiveDepthLifting',
        num_keypoints=num_keypoints,
        root_index=model.get('root_idx', 0),
        head_index=model.get('head_idx', 10),
        depth_offset=float(model.get('depth_offset', 10.0)),
        min_depth=float(model.get('min_depth', 1.0)),
        scale_mode=model.get('scale_mode', 'head'),
        output_head_root=(model.get('test_cfg') or {}).get('output_head_root'),
        # The score channel is MMPose's keypoints_visible (see PerspectiveDepthLifting).
        concat_vis=in_channels == 3)
    pipeline = [
        dict(type='GenerateTarget', encoder=codec),
        dict(type='PackPoseInputs', meta_keys=META_KEYS),
    ]
    dataloader = dict(
        batch_size=256,
        num_workers=0,
        persistent_workers=False,
        drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
        dataset=dict(
            type=DATASET_TYPE,
            ann_file='annotation_body3d/fps50/h36m_test.npz',
            seq_len=1,
            causal=True,
            keypoint_2d_src='gt',
            data_root=data_root,
            data_prefix=dict(img='images/'),
            pipeline=pipeline))
    evaluator = [dict(type='MPJPE', mode=m) for m in ('n-mpjpe', 'p-mpjpe', 'mpjpe')]
    cfg = dict(
        default_scope='mmpose',
        custom_imports=dict(imports=list(CUSTOM_IMPORTS), allow_failed_imports=False),
        data_root=data_root,
        dataset_type=DATASET_TYPE,
        codec=codec,
        model=dict(
            type='PoseLifter',
            backbone=backbone,
            head=dict(type='DepthLiftingHead', in_channels=width, num_joints=num_keypoints,
                      decoder=codec)),
        test_pipeline=pipeline,
        val_dataloader=dataloader,
        test_dataloader=dataloader,
        val_evaluator=evaluator,
        test_evaluator=evaluator,
        val_cfg=dict(type='ValLoop'),
        test_cfg=dict(type='TestLoop'),
        vis_backends=VIS_BACKENDS,
        visualizer=VISUALIZER,
    )
    for key in RUNTIME_KEYS:
        if key in src:
            cfg[key] = src[key]
    return Config(cfg)


def convert_state_dict(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename ``Unsup3DLifter`` weights to ``PoseLifter`` ones.

    ``lifter.out.*`` -> ``head.fc.*``; every other ``lifter.*`` -> ``backbone.*``; the
    discriminator(s) and anything else are dropped.
    """
    out = {}
    for key, value in state.items():
        if key.startswith('lifter.out.'):
            out['head.fc.' + key[len('lifter.out.'):]] = value
        elif key.startswith('lifter.'):
            out['backbone.' + key[len('lifter.'):]] = value
    if not out:
        raise KeyError('The checkpoint holds no "lifter.*" weights: is it an Unsup3DLifter '
                       'checkpoint?')
    return out


def convert(in_ckpt: str,
            out_ckpt: str,
            config: Optional[str] = None,
            out_config: Optional[str] = None,
            data_root: str = 'data/h36m_fixture/') -> str:
    """Convert ``in_ckpt`` and write ``out_ckpt`` and its config; return the config path.

    Raises:
        FileNotFoundError: ``in_ckpt`` or ``config`` does not exist.
        UnsafeCheckpointError: ``in_ckpt`` references objects outside the allow-list.
        RuntimeError: ``in_ckpt`` is corrupt or not a checkpoint.
        KeyError: it holds no ``lifter.*`` weights.
        CheckpointMismatchError: (a ``ValueError``) its lifter does not fit the config; the
            message names the keys and both shapes.
    """
    import mmunsup3d  # noqa: F401  (registers components, allow-lists checkpoint globals)
    import mmunsup3d.codecs  # noqa: F401
    import mmunsup3d.models.heads  # noqa: F401
    from mmpose.registry import MODELS
    from mmunsup3d.datasets import h36m_metainfo
    from mmunsup3d.utils.checkpoint import (checkpoint_state_dict, load_state_dict_strict,
                                            safe_torch_load)

    ckpt = safe_torch_load(in_ckpt, map_location='cpu')
    state = checkpoint_state_dict(ckpt, in_ckpt)
    src_cfg = load_source_config(ckpt, config)
    cfg = build_mmpose_config(src_cfg, data_root)

    model = MODELS.build(cfg.model)
    # Every key of the PoseLifter must come from the lifter, with its shape (names in the
    # error are the converted ones: backbone.* = lifter.*, head.fc.* = lifter.out.*). Loading
    # casts half-precision weights to the model's float32.
    load_state_dict_strict(model, convert_state_dict(state), prefixes=None,
                           source=f'{in_ckpt} (converted to PoseLifter keys)')

    meta = dict(
        dataset_meta=h36m_metainfo(),
        converted_from=osp.basename(in_ckpt),
        converter='mmunsup3d tools/misc/convert_to_mmpose_lifter.py')
    src_meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    for key in ('epoch', 'iter', 'mmengine_version', 'experiment_name'):
        if key in src_meta:
            meta[f'source_{key}'] = src_meta[key]
    out_dir = osp.dirname(osp.abspath(out_ckpt))
    os.makedirs(out_dir, exist_ok=True)
    torch.save(dict(meta=meta, state_dict=model.state_dict()), out_ckpt)

    if out_config is None:
        out_config = osp.splitext(out_ckpt)[0] + '.py'
    os.makedirs(osp.dirname(osp.abspath(out_config)), exist_ok=True)
    cfg.dump(out_config)
    return out_config


def main() -> None:
    args = parse_args()
    out_config = convert(args.in_ckpt, args.out_ckpt, args.config, args.out_config,
                         args.data_root)
    print(f'Wrote {args.out_ckpt} and {out_config}')


if __name__ == '__main__':
    main()
