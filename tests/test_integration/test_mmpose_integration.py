"""MMPose integration: ResidualLifter inside MMPose's PoseLifter, conversion of unsupervised
checkpoints to MMPose models, and ``mmunsup3d::`` config inheritance from outside the repo."""
import glob
import json
import os.path as osp
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import REPO, run_python
from helpers import tiny_cfg
from mmunsup3d.apis import init_lifter, lift_keypoints
from mmunsup3d.datasets import MocapProjectionDataset

sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
from convert_to_mmpose_lifter import build_mmpose_config, convert_state_dict  # noqa: E402

SUP_CONFIG = osp.join(REPO, 'configs', 'mmpose_poselifter',
                      'poselifter_reslifter-regression_1xb256-20e_pybullet-mocap.py')
CONVERTER = osp.join(REPO, 'tools', 'misc', 'convert_to_mmpose_lifter.py')
FIXTURE_TOOL = osp.join(REPO, 'tools', 'dataset_converters', 'make_h36m_fixture.py')
# Clips with upright and lying/crawling poses (where the scale normalisation matters).
CLIPS = ('walk', 'crawl', 'roll')
# MMPose-side 3D vs mmunsup3d.apis.lift_keypoints, metres. Same float32 ops in the same order;
# measured 0.0 (bit-identical) on CPU, the bound only absorbs BLAS batch-blocking differences.
ATOL_M = 1e-5


@pytest.fixture(scope='module')
def h36m_root(tmp_path_factory):
    """The project's Human3.6M-format fixture (MMPose's layout) in a temporary folder."""
    root = str(tmp_path_factory.mktemp('h36m'))
    run_python([FIXTURE_TOOL, '--out', root])
    assert osp.isfile(osp.join(root, 'annotation_body3d', 'fps50', 'h36m_test.npz'))
    return root


@pytest.fixture(scope='module')
def unsup_ckpt(tmp_path_factory):
    """A real (tiny) Unsup3DLifter training checkpoint: discriminator, optimizers, meta.cfg."""
    work = str(tmp_path_factory.mktemp('unsup'))
    cfg = tiny_cfg(work, max_epochs=1, clips=('walk', ))
    runner = Runner.from_cfg(cfg)
    runner.train()
    return cfg, osp.join(work, 'epoch_1.pth')


@pytest.fixture(scope='module')
def converted(unsup_ckpt, h36m_root, tmp_path_factory):
    """Run the converter CLI (config taken from the checkpoint's meta)."""
    _, ckpt = unsup_ckpt
    out = str(tmp_path_factory.mktemp('converted'))
    out_ckpt = osp.join(out, 'poselifter.pth')
    out_cfg = osp.join(out, 'poselifter_config.py')
    run_python([CONVERTER, ckpt, out_ckpt, '--out-config', out_cfg, '--data-root', h36m_root])
    return out_ckpt, out_cfg


def _pose_results_2d(keypoints: np.ndarray) -> list:
    """One video frame of 2D detections as MMPose's pose lifting API expects them."""
    from mmengine.structures import InstanceData
    from mmpose.structures import PoseDataSample
    frame = []
    for idx, kpts in enumerate(keypoints):
        sample = PoseDataSample()
        lo, hi = kpts.min(0), kpts.max(0)
        sample.pred_instances = InstanceData(
            keypoints=kpts[None].astype(np.float32),
            keypoint_scores=np.ones((1, len(kpts)), np.float32),
            bboxes=np.concatenate([lo, hi])[None].astype(np.float32))
        sample.gt_instances = InstanceData()
        sample.track_id = idx
        frame.append(sample)
    return [frame]


def _logged_metrics(work_dir: str) -> dict:
    """The last record with an ``MPJPE`` entry in the JSON logs MMEngine wrote in ``work_dir``.

    Validation metrics are in ``<timestamp>/vis_data/scalars.json``, test metrics in
    ``<timestamp>/<timestamp>.json``.
    """
    found = None
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')) +
                       glob.glob(osp.join(work_dir, '*', '*.json'))):
        with open(path, encoding='utf-8') as f:
            for line in f:
                record = json.loads(line)
                if 'MPJPE' in record:
                    found = record
    assert found is not None, f'no MPJPE record in the logs of {work_dir}'
    return found


def _h36m_data_root_opts(root: str) -> list:
    return [f'{d}.dataset.data_root={root}'
            for d in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


# --------------------------------------------------------------------------- codec and head
@pytest.mark.parametrize('scale_mode', ['head', 'rms'])
def test_codec_encodes_like_unsup3d_and_decodes_its_geometry(scale_mode):
    from mmpose.registry import KEYPOINT_CODECS, MODELS
    import mmunsup3d.codecs  # noqa: F401
    lifter = MODELS.build(dict(
        type='Unsup3DLifter', lifter=dict(type='ResidualLifter', width=16, num_blocks=1),
        gan_loss=None, scale_mode=scale_mode,
        test_cfg=dict(output_head_root=0.72))).eval()
    codec = KEYPOINT_CODECS.build(dict(type='PerspectiveDepthLifting', scale_mode=scale_mode,
                                       output_head_root=0.72))
    kpts = MocapProjectionDataset(split='test', clips=['roll']).arrays['keypoints_2d'][:4]
    target = np.random.default_rng(0).normal(size=(4, 17, 3)).astype(np.float32)
    norms = []
    for k, t in zip(kpts, target):
        enc = codec.encode(k[None], lifting_target=t[None])
        norm = lifter.normalize(torch.from_numpy(k[None]))
        assert torch.equal(torch.from_numpy(enc['norm_keypoints_2d']), norm)
        # Network input: (K*2, 1), joint-major, as MMPose's ImagePoseLifting packs it.
        assert enc['keypoint_labels'].shape == (34, 1)
        assert np.array_equal(enc['keypoint_labels'][:, 0], enc['norm_keypoints_2d'].ravel())
        assert np.allclose(enc['lifting_target_label'], t[None] - t[None, :1])
        assert np.allclose(enc['target_root'], t[None, 0])
        norms.append(norm[0])
    norms = torch.stack(norms)
    with torch.no_grad():
        depths = lifter.lifter(norms)
        expected = lifter.predict_3d(torch.from_numpy(kpts))
    decoded, scores = codec.batch_decode(depths, norms)
    assert decoded.shape == (4, 1, 17, 3) and scores.shape == (4, 1, 17)
    assert torch.equal(torch.from_numpy(decoded[:, 0]), expected)
    single, _ = codec.decode(depths[0].numpy(), norms[:1].numpy(), np.ones((1, 3)))
    assert np.allclose(single, expected[:1].numpy() + 1.0, atol=1e-6)
    with pytest.raises(ValueError, match='single frames'):
        codec.encode(np.concatenate([kpts[:1], kpts[:1]]))


def test_depth_lifting_head_needs_normalised_input_in_meta():
    from mmpose.registry import MODELS
    from mmpose.structures import PoseDataSample
    import mmunsup3d.models.heads  # noqa: F401
    head = MODELS.build(dict(type='DepthLiftingHead', in_channels=8,
                             decoder=dict(type='PerspectiveDepthLifting')))
    feats = (torch.randn(2, 8, 1), )
    assert head(feats).shape == (2, 17)
    with pytest.raises(KeyError, match='norm_keypoints_2d'):
        head.predict(feats, [PoseDataSample(), PoseDataSample()])
    with pytest.raises(ValueError, match='decoder'):
        MODELS.build(dict(type='DepthLiftingHead', in_channels=8))


# --------------------------------------------------------------------------- supervised config
def test_supervised_poselifter_trains_and_evaluates_with_mmpose_metric(h36m_root, tmp_path):
    cfg = Config.fromfile(SUP_CONFIG)
    assert cfg.model.type == 'PoseLifter' and cfg.model.backbone.type == 'ResidualLifter'
    assert cfg.model.backbone.as_backbone and cfg.model.head.type == 'TemporalRegressionHead'
    assert cfg.model.head.decoder.type == 'ImagePoseLifting'
    assert cfg.train_dataloader.dataset.type == 'Human36mDataset'
    assert {e['type'] for e in cfg.val_evaluator} == {'MPJPE'}
    work = str(tmp_path / 'work')
    opts = ['model.backbone.width=32', 'model.backbone.num_blocks=1', 'model.head.in_channels=32',
            'train_dataloader.batch_size=64', 'train_dataloader.dataset.indices=256',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
            'val_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1',
            'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
            'default_hooks.logger.interval=1', *_h36m_data_root_opts(h36m_root)]
    run_python(['tools/train.py', SUP_CONFIG, '--work-dir', work, '--cfg-options', *opts])
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    # Validation at the end of training: MMPose's MPJPE metric, in metres.
    metrics = _logged_metrics(work)
    for key in ('MPJPE', 'P-MPJPE', 'N-MPJPE'):
        assert np.isfinite(metrics[key]) and 0.0 < metrics[key] < 5.0, metrics
    assert any(k.startswith('MPJPE_') for k in metrics)  # per-action, parsed from image names


# --------------------------------------------------------------------------- conversion
def test_converted_checkpoint_matches_lift_keypoints_through_mmpose_api(unsup_ckpt, converted):
    from mmpose.apis import inference_pose_lifter_model, init_model
    cfg, ckpt = unsup_ckpt
    out_ckpt, out_cfg = converted
    model = init_model(out_cfg, out_ckpt, device='cpu')
    assert type(model).__name__ == 'PoseLifter'
    assert type(model.head).__name__ == 'DepthLiftingHead'
    assert model.dataset_meta['dataset_name'] == 'h36m'  # stored in the checkpoint meta
    kpts = np.concatenate([
        MocapProjectionDataset(split='test', clips=[c]).arrays['keypoints_2d'][:12]
        for c in CLIPS
    ])
    results = inference_pose_lifter_model(model, _pose_results_2d(kpts), with_track_id=True)
    mm = np.stack([r.pred_instances.keypoints[0] for r in results])
    ref = lift_keypoints(init_lifter(cfg, ckpt), kpts)
    assert mm.shape == ref.shape == (len(kpts), 17, 3)
    # Same 3D, in the same unit: root-relative camera frame rescaled so that head-root is
    # test_cfg.output_head_root metres.
    assert cfg.model.test_cfg.output_head_root == pytest.approx(0.72)
    np.testing.assert_allclose(mm, ref, rtol=0, atol=ATOL_M)
    assert np.allclose(np.linalg.norm(mm[:, 10] - mm[:, 0], axis=-1), 0.72, atol=1e-5)


def test_converted_model_evaluates_with_mmpose_metric(unsup_ckpt, converted, h36m_root,
                                                      tmp_path):
    from mmpose.evaluation.functional import keypoint_mpjpe
    cfg, ckpt = unsup_ckpt
    out_ckpt, out_cfg = converted
    run_python(['tools/test.py', out_cfg, out_ckpt, '--work-dir', str(tmp_path)])
    metrics = _logged_metrics(str(tmp_path))
    # The same numbers from mmunsup3d's own inference on the same 2D/3D arrays.
    data = np.load(osp.join(h36m_root, 'annotation_body3d', 'fps50', 'h36m_test.npz'))
    pred = lift_keypoints(init_lifter(cfg, ckpt), data['part'][..., :2])
    gt = data['S'][..., :3]
    pred = pred + gt[:, :1]  # the head restores the target root, as MMPose's lifting heads do
    mask = data['S'][..., 3] > 0
    for key, align in (('MPJPE', 'none'), ('P-MPJPE', 'procrustes'), ('N-MPJPE', 'scale')):
        assert metrics[key] == pytest.approx(keypoint_mpjpe(pred, gt, mask, align), rel=1e-5)


def test_convert_state_dict_and_unsupported_models(unsup_ckpt):
    cfg, _ = unsup_ckpt
    state = {'lifter.stem.0.weight': 1, 'lifter.blocks.0.layers.0.bias': 2,
             'lifter.out.weight': 3, 'discriminator.stem.0.weight': 4}
    assert convert_state_dict(state) == {'backbone.stem.0.weight': 1,
                                         'backbone.blocks.0.layers.0.bias': 2,
                                         'head.fc.weight': 3}
    with pytest.raises(KeyError, match='lifter'):
        convert_state_dict({'discriminator.x': 1})
    mm = build_mmpose_config(cfg)
    assert mm.model.backbone.as_backbone and mm.model.backbone.width == cfg.model.lifter.width
    assert mm.codec.scale_mode == cfg.model.get('scale_mode', 'head')
    assert 'norm_keypoints_2d' in mm.test_pipeline[-1].meta_keys
    flat = cfg.copy()
    flat.model.lifter = dict(type='FlatDepthLifter', num_keypoints=17)
    with pytest.raises(ValueError, match='ResidualLifter'):
        build_mmpose_config(flat)


# --------------------------------------------------------------------------- mmunsup3d:: scope
def test_mmunsup3d_scope_inheritance_trains_outside_repo(tmp_path):
    """``_base_ = ['mmunsup3d::...']`` from a folder outside the repository, via tools/train.py.

    Needs ``import mmunsup3d`` to register the ``mmunsup3d`` scope with MMEngine (see
    docs/mmpose_integration.md). The data file is found through ``resolve_data_file``'s
    fallback to the package, since the working directory is not the repository.
    """
    import mmunsup3d  # noqa: F401
    from mmengine.config.utils import MODULE2PACKAGE
    assert MODULE2PACKAGE.get('mmunsup3d') == 'mmunsup3d', \
        'import mmunsup3d must register the "mmunsup3d" config scope with MMEngine'
    cfg_path = tmp_path / 'my_unsup3d.py'
    cfg_path.write_text(textwrap.dedent("""\
        _base_ = ['mmunsup3d::unsup3d/unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py']
        custom_imports = dict(imports=['mmunsup3d'], allow_failed_imports=False)
        model = dict(lifter=dict(width=16, num_blocks=1),
                     discriminator=dict(width=16, num_blocks=1))
        train_dataloader = dict(batch_size=64, dataset=dict(clips=['walk']))
        val_dataloader = dict(dataset=dict(clips=['walk']))
        test_dataloader = val_dataloader
        train_cfg = dict(max_epochs=1, val_interval=1)
        default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
        """))
    assert not osp.exists(tmp_path / 'data')
    proc = run_python([osp.join(REPO, 'tools', 'train.py'), str(cfg_path), '--work-dir',
                       str(tmp_path / 'work')], cwd=str(tmp_path))
    assert osp.isfile(tmp_path / 'work' / 'epoch_1.pth')
    log = proc.stdout + proc.stderr
    assert 'N-MPJPE' in log
    assert 'Failed to search registry with scope' not in log
