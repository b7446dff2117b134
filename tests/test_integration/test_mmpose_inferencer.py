"""Converted zoo lifters through MMPose's own APIs, inferencers, test loop and 3D visualizer.

Every committed zoo checkpoint (``checkpoints/``; one is confidence-aware, ``in_channels=3``) is
converted with ``tools/misc/convert_to_mmpose_lifter.py`` and run by unmodified MMPose code:
``init_model`` + ``inference_pose_lifter_model``, ``Pose3DInferencer`` / ``MMPoseInferencer``
(with visualisation) and ``Runner.from_cfg`` + ``runner.test`` (MMPose's ``tools/test.py``) on a
Human3.6M-layout dataset. The 3D must equal ``mmunsup3d.apis.lift_keypoints``.

No 2D detector / pose weights can be downloaded here, so the inferencers get their 2D stage in
one of two ways (each test says which): given 2D predictions (the mocap's projected 2D) in
place of ``Pose2DInferencer``, for numerical checks; or a real MMPose 2D model (MMPose's own
ResNet heatmap config, shrunk) with random weights, for the plumbing of the exact user call.
"""
import json
import os.path as osp
import sys
import textwrap
import uuid

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.structures import InstanceData

from conftest import REPO, run_python
from mmunsup3d.apis import init_lifter, lift_keypoints
from mmunsup3d.datasets import MocapProjectionDataset, h36m_metainfo
from mmunsup3d.utils.zoo import list_models, resolve_model
from mmunsup3d.visualization import canvas_tostring_rgb, patch_tostring_rgb

sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
from convert_to_mmpose_lifter import build_mmpose_config, convert  # noqa: E402

FIXTURE_TOOL = osp.join(REPO, 'tools', 'dataset_converters', 'make_h36m_fixture.py')
DET_FILE = 'joint_2d_det_files/cpn_ft_h36m_dbb_test.npy'
# MMPose-side 3D vs lift_keypoints, metres (docs/mmpose_integration.md). Measured: 0.0 through
# inference_pose_lifter_model (same float32 ops), < 1e-6 through Pose3DInferencer (its bbox
# re-normalisation of the 2D is a similarity transform, undone by the codec up to rounding).
ATOL_M = 1e-5
# Human3.6M-17 root joint (pelvis).
ROOT = 0


def _zoo_entries() -> list:
    """(name, config, weights) of the zoo entries whose weights are committed in checkpoints/."""
    entries = []
    for name in list_models():
        info = resolve_model(name)
        if info['local']:
            entries.append((name, info['config'], info['local']))
    return entries


ZOO = _zoo_entries()
ZOO_NAMES = [name for name, _, _ in ZOO]


def _in_channels(config: str) -> int:
    return Config.fromfile(config).model.lifter.get('in_channels', 2)


def test_zoo_has_the_four_committed_checkpoints_one_confidence_aware():
    # Guards the parametrisation below: if checkpoints/ changes, these tests must follow.
    assert len(ZOO) == 4, ZOO_NAMES
    assert sorted(_in_channels(cfg) for _, cfg, _ in ZOO) == [2, 2, 2, 3]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def h36m_root(tmp_path_factory):
    """The project's Human3.6M-format fixture (MMPose's layout, with 2D detections + scores)."""
    root = str(tmp_path_factory.mktemp('h36m'))
    run_python([FIXTURE_TOOL, '--out', root])
    assert osp.isfile(osp.join(root, DET_FILE))
    return root


@pytest.fixture(scope='module')
def converted(tmp_path_factory, h36m_root):
    """Each zoo checkpoint converted to an MMPose PoseLifter: name -> (ckpt, config path)."""
    out = str(tmp_path_factory.mktemp('mmpose_zoo'))
    result = {}
    for name, config, weights in ZOO:
        ckpt = osp.join(out, f'{name}.pth')
        cfg_path = convert(weights, ckpt, config=config, data_root=h36m_root)
        assert cfg_path == osp.join(out, f'{name}.py')
        result[name] = (ckpt, cfg_path)
    return result


@pytest.fixture(scope='module')
def lifters():
    """name -> the zoo model built by mmunsup3d's own API (the reference)."""
    return {name: init_lifter(config, weights) for name, config, weights in ZOO}


def _fixture_frames(h36m_root: str, num: int = 8) -> np.ndarray:
    """``num`` Human3.6M-format test frames (pixels, ``part[..., :2]``) spread over the file."""
    data = np.load(osp.join(h36m_root, 'annotation_body3d', 'fps50', 'h36m_test.npz'))
    part = data['part']
    return part[np.linspace(0, len(part) - 1, num).astype(int), :, :2].astype(np.float32)


def _frame_2d(keypoints: np.ndarray, shape=(400, 400)) -> list:
    """One video frame of 2D results, as MMPose's 2D stage returns them (one sample per person).

    Args:
        keypoints: ``(N, 17, 2)`` Human3.6M-17 pixels.
        shape: ``(H, W)`` of the frame.
    """
    from mmpose.structures import PoseDataSample
    frame = []
    for idx, kpts in enumerate(keypoints):
        sample = PoseDataSample(metainfo=dict(ori_shape=shape, img_path='frame.jpg'))
        sample.pred_instances = InstanceData(
            keypoints=kpts[None].astype(np.float32),
            keypoint_scores=np.ones((1, len(kpts)), np.float32),
            bboxes=np.concatenate([kpts.min(0), kpts.max(0)])[None].astype(np.float32),
            bbox_scores=np.ones(1, np.float32))
        sample.gt_instances = InstanceData()
        sample.track_id = idx
        frame.append(sample)
    return frame


# --------------------------------------------------------------------------- converted config
@pytest.mark.parametrize('name', ZOO_NAMES)
def test_converted_config_provides_what_mmpose_inferencers_read(converted, name):
    import mmunsup3d.utils.checkpoint as ck
    ckpt, cfg_path = converted[name]
    cfg = Config.fromfile(cfg_path)
    in_channels = _in_channels(resolve_model(name)['config'])
    # MMPose's 3D visualizer (Pose3DInferencer calls set_dataset_meta on it).
    assert cfg.visualizer.type == 'Pose3dLocalVisualizer'
    assert cfg.visualizer.vis_backends == [dict(type='LocalVisBackend')]
    # The shim reaches processes that never import mmunsup3d themselves.
    assert 'mmunsup3d.visualization' in cfg.custom_imports.imports
    # Pose3DInferencer: pipeline, seq_len / causal of test_dataloader.dataset.
    dataset = cfg.test_dataloader.dataset
    assert dataset.type == cfg.dataset_type == 'SafeHuman36mDataset'  # cameras.pkl read safely
    assert (dataset.seq_len, dataset.causal) == (1, True)
    assert dataset.pipeline[0] == dict(type='GenerateTarget', encoder=cfg.codec)
    assert cfg.model.backbone.in_channels == in_channels
    assert cfg.codec.concat_vis is (in_channels == 3)
    assert cfg.model.head.decoder == cfg.codec
    # dataset_meta (name, skeleton, stats_info for the inferencer's 2D bbox normalisation).
    meta = ck.safe_torch_load(ckpt, map_location='cpu')['meta']['dataset_meta']
    assert meta['dataset_name'] == 'h36m' and meta['num_keypoints'] == 17
    assert set(meta['stats_info']) == {'bbox_center', 'bbox_scale'}


def test_converter_accepts_confidence_lifters_and_names_bad_in_channels():
    cfg = Config.fromfile(resolve_model(ZOO_NAMES[0])['config'])
    for channels, concat in ((2, False), (3, True)):
        cfg.model.lifter.in_channels = channels
        mm = build_mmpose_config(cfg)
        assert mm.model.backbone.in_channels == channels and mm.codec.concat_vis is concat
    cfg.model.lifter.in_channels = 4
    with pytest.raises(ValueError, match=r'in_channels=3\) keypoints can be converted, got '
                                         r'in_channels=4'):
        build_mmpose_config(cfg)


# --------------------------------------------------------------------------- codec scores
def test_codec_appends_scores_joint_major_and_checks_them():
    from mmpose.registry import KEYPOINT_CODECS
    codec = KEYPOINT_CODECS.build(dict(type='PerspectiveDepthLifting', num_keypoints=3,
                                       root_index=0, head_index=1, depth_offset=10.0,
                                       concat_vis=True))
    # Root (0, 0), head (0, -2), third joint (1, 0): head-root distance 2 -> scaled to 1/c.
    kpts = np.array([[[0., 0.], [0., -2.], [1., 0.]]], np.float32)
    enc = codec.encode(kpts, np.array([[1.0, 0.5, 0.25]], np.float32))
    # (x, y, score) per joint, joint-major: what ResidualLifter(in_channels=3) flattens.
    np.testing.assert_allclose(enc['keypoint_labels'][:, 0],
                               [0, 0, 1.0, 0, -0.1, 0.5, 0.05, 0, 0.25], atol=1e-7)
    assert enc['norm_keypoints_2d'].shape == (1, 3, 2)  # the decoder still gets 2D only
    plain = KEYPOINT_CODECS.build(dict(type='PerspectiveDepthLifting', num_keypoints=3,
                                       root_index=0, head_index=1))
    assert plain.encode(kpts)['keypoint_labels'].shape == (6, 1)
    with pytest.raises(ValueError, match=r'in \[0, 1\]; joint 2 has 1\.5'):
        codec.encode(kpts, np.array([[1.0, 0.5, 1.5]], np.float32))
    with pytest.raises(ValueError, match=r'joint 0 has nan'):
        codec.encode(kpts, np.array([[np.nan, 0.5, 1.0]], np.float32))
    with pytest.raises(ValueError, match=r'keypoints_visible with 3 values .* got shape \(1, 2\)'):
        codec.encode(kpts, np.ones((1, 2), np.float32))


# --------------------------------------------------------------------------- mmpose.apis
@pytest.mark.parametrize('name', ZOO_NAMES)
def test_inference_pose_lifter_model_matches_lift_keypoints(converted, lifters, h36m_root,
                                                            name):
    from mmpose.apis import inference_pose_lifter_model, init_model
    ckpt, cfg_path = converted[name]
    model = init_model(cfg_path, ckpt, device='cpu')
    assert model.backbone.in_channels == lifters[name].lifter.in_channels
    kpts = _fixture_frames(h36m_root)
    results = inference_pose_lifter_model(model, [_frame_2d(kpts, (1002, 1000))],
                                          with_track_id=True)
    mm = np.stack([r.pred_instances.keypoints[0] for r in results])
    # MMPose's API sets keypoints_visible to ones: a confidence-aware lifter sees score 1,
    # which is lift_keypoints without scores.
    ref = lift_keypoints(lifters[name], kpts)
    assert mm.shape == ref.shape == (len(kpts), 17, 3)
    assert np.abs(mm - ref).max() <= ATOL_M


@pytest.mark.parametrize('name', ZOO_NAMES)
def test_mmpose_test_loop_carries_detection_scores_to_the_lifter(converted, lifters, h36m_root,
                                                                 tmp_path, name):
    """MMPose's tools/test.py pattern on detections: scores travel as keypoints_visible."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmpose.evaluation.functional import keypoint_mpjpe
    from mmpose.registry import DATASETS
    ckpt, cfg_path = converted[name]
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:12]}'
    cfg.load_from = ckpt
    cfg.test_dataloader.batch_size = 16
    cfg.test_dataloader.dataset.update(keypoint_2d_src='detection', keypoint_2d_det_file=DET_FILE,
                                       indices=40)
    metrics = Runner.from_cfg(cfg).test()

    init_default_scope('mmpose')
    dataset = DATASETS.build(cfg.test_dataloader.dataset.copy())
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    kpts = np.concatenate([d['keypoints'] for d in infos])            # (40, 17, 2) detections
    scores = np.concatenate([d['keypoints_visible'] for d in infos])  # (40, 17) their scores
    gt = np.concatenate([d['lifting_target'] for d in infos])         # (40, 17, 3)
    mask = np.concatenate([d['lifting_target_visible'] for d in infos]).reshape(gt.shape[:2]) > 0
    assert len(kpts) == 40 and 0.0 < scores.min() < scores.max() < 1.0

    def mpjpe(pred: np.ndarray) -> dict:
        pred = pred + gt[:, :1]  # the head restores the target root, as MMPose's heads do
        return {key: keypoint_mpjpe(pred, gt, mask, align) for key, align in
                (('MPJPE', 'none'), ('P-MPJPE', 'procrustes'), ('N-MPJPE', 'scale'))}

    expected = mpjpe(lift_keypoints(lifters[name], kpts, scores))
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5), key
    without_scores = mpjpe(lift_keypoints(lifters[name], kpts))['MPJPE']
    if _in_channels(resolve_model(name)['config']) == 3:
        # The scores change a confidence-aware lifter's output: they did reach it.
        assert abs(metrics['MPJPE'] - without_scores) > 1e-4
    else:
        assert metrics['MPJPE'] == pytest.approx(without_scores, rel=1e-5)


def test_scores_through_the_config_pipeline_as_documented(converted, lifters, h36m_root):
    """docs/mmpose_integration.md: 2D scores at inference via keypoints_visible + test_step."""
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope
    from mmpose.apis import init_model
    name = next(n for n, cfg, _ in ZOO if _in_channels(cfg) == 3)
    ckpt, cfg_path = converted[name]
    model = init_model(cfg_path, ckpt, device='cpu')
    det = np.load(osp.join(h36m_root, DET_FILE))[:6]
    kpts, scores = det[..., :2], det[..., 2]
    init_default_scope('mmpose')
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    batch = pseudo_collate([
        pipeline(dict(keypoints=k[None], keypoints_visible=s[None],
                      lifting_target=np.zeros((1, 17, 3), np.float32), **model.dataset_meta))
        for k, s in zip(kpts, scores)
    ])
    mm = np.stack([r.pred_instances.keypoints[0] for r in model.test_step(batch)])
    assert np.abs(mm - lift_keypoints(lifters[name], kpts, scores)).max() <= ATOL_M
    assert np.abs(mm - lift_keypoints(lifters[name], kpts)).max() > 1e-3  # scores mattered


# --------------------------------------------------------------------------- inferencers
class _Given2DInferencer:
    """Stands in for MMPose's ``Pose2DInferencer``: yields given 2D results, one frame per call.

    No 2D weights can be downloaded here; everything after the 2D stage (tracking, keypoint
    conversion, bbox normalisation, the converted config's pipeline, the lifter, axis
    conversion, visualisation) is MMPose's ``Pose3DInferencer`` code, unchanged.
    """

    frames: list = []  # (N, 17, 2) Human3.6M-17 pixels per frame, set by the test

    def __init__(self, *args, **kwargs) -> None:
        from mmpose.visualization import PoseLocalVisualizer
        self.model = type('Given2DModel', (), {'dataset_meta': h36m_metainfo()})()
        self.visualizer = PoseLocalVisualizer(name=f'given2d_{uuid.uuid4().hex[:8]}')
        self.visualizer.set_dataset_meta(self.model.dataset_meta)
        self.calls = 0

    def __call__(self, inputs, **kwargs):
        frame = _frame_2d(self.frames[self.calls % len(self.frames)], inputs.shape[:2])
        self.calls += 1
        yield dict(predictions=frame)


@pytest.mark.parametrize('name', ZOO_NAMES)
def test_pose3d_inferencer_lifts_given_2d_and_visualises(converted, lifters, tmp_path,
                                                         monkeypatch, name):
    # 2D stage: given 2D predictions (see _Given2DInferencer), not a 2D model.
    import mmpose.apis.inferencers.pose3d_inferencer as pose3d_module
    monkeypatch.setattr(pose3d_module, 'Pose2DInferencer', _Given2DInferencer)
    ckpt, cfg_path = converted[name]
    arrays = MocapProjectionDataset(split='test').arrays
    # 3 real frames of the test mocap, scaled into a 400 x 400 image (the lifter is invariant
    # to 2D translation and zoom).
    kpts = arrays['keypoints_2d'][[0, 300, 600]] * 0.4
    _Given2DInferencer.frames = [k[None] for k in kpts]
    inferencer = pose3d_module.Pose3DInferencer(cfg_path, ckpt, device='cpu')
    assert type(inferencer.visualizer).__name__ == 'Pose3dLocalVisualizer'
    background = np.full((400, 400, 3), 80, np.uint8)
    vis_dir = tmp_path / 'vis'
    results = list(inferencer([background] * 3, return_vis=True, vis_out_dir=str(vis_dir)))
    assert len(results) == 3

    poses = np.stack([np.asarray(r['predictions'][0][0]['keypoints']) for r in results])
    assert poses.shape == (3, 17, 3)
    # Pose3DInferencer shows camera-frame poses as (-x, z, -y), lifted to stand on z = 0.
    assert np.allclose(poses[..., 2].min(-1), 0.0)
    camera = np.stack([-poses[..., 0], -(poses[..., 2] - poses[:, ROOT:ROOT + 1, 2]),
                       poses[..., 1]], -1)
    ref = lift_keypoints(lifters[name], kpts)
    assert np.abs(camera - ref).max() <= ATOL_M

    for result in results:
        (image, ) = result['visualization']
        # 2D panel (the frame) | 3D panel (square, the frame's size).
        assert image.shape == (400, 800, 3) and image.dtype == np.uint8
        assert (image[:, :400] != background).any() and (image[:, 400:] != 255).any()
    saved = cv2.imread(str(vis_dir / 'frame.jpg'))
    assert saved is not None and saved.shape == (400, 800, 3)


def test_mmpose_inferencer_call_in_a_pure_mmpose_process(converted, tmp_path):
    """The user's call: ``MMPoseInferencer(pose3d=CONFIG, pose3d_weights=CKPT)`` + drawing.

    Runs in a fresh interpreter that imports only MMPose (mmunsup3d and the Matplotlib shim come
    from the converted config's custom_imports). 2D stage: a real MMPose 2D model (MMPose's own
    ResNet heatmap config, shrunk to ResNet-18) with RANDOM weights and no detector
    (``det_model='whole_image'``): it only exercises the plumbing, its 3D is not checked
    against anything but shape and finiteness.
    """
    import mmpose
    name = next(n for n, cfg, _ in ZOO if _in_channels(cfg) == 3)
    ckpt, cfg_path = converted[name]
    base_2d = osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs', 'body_2d_keypoint',
                       'topdown_heatmap', 'coco', 'td-hm_res50_8xb64-210e_coco-256x192.py')
    assert osp.isfile(base_2d)
    cfg_2d = tmp_path / 'random_2d.py'
    cfg_2d.write_text(textwrap.dedent(f"""\
        _base_ = [{base_2d!r}]
        model = dict(backbone=dict(depth=18, init_cfg=None),
                     head=dict(in_channels=512, deconv_out_channels=(32, 32, 32)))
        """))
    cv2.imwrite(str(tmp_path / 'frame.jpg'), np.full((240, 320, 3), 80, np.uint8))
    script = textwrap.dedent(f"""\
        import json, sys
        import numpy as np, torch
        from mmpose.apis import MMPoseInferencer
        assert 'mmunsup3d' not in sys.modules
        torch.manual_seed(0)
        inferencer = MMPoseInferencer(pose3d={cfg_path!r}, pose3d_weights={ckpt!r},
                                      pose2d={str(cfg_2d)!r}, det_model='whole_image',
                                      device='cpu')
        (result, ) = inferencer('frame.jpg', vis_out_dir='vis', return_vis=True)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        print(json.dumps(dict(
            imported='mmunsup3d' in sys.modules,
            shim=getattr(FigureCanvasAgg.tostring_rgb, '_mmunsup3d_shim', False),
            keypoints=np.asarray(result['predictions'][0][0]['keypoints']).tolist(),
            vis_shape=list(result['visualization'][0].shape))))
        """)
    proc = run_python(['-c', script], cwd=str(tmp_path))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['imported']
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    needs_shim = getattr(FigureCanvasAgg.tostring_rgb, '_mmunsup3d_shim', False)
    assert out['shim'] is needs_shim, matplotlib.__version__
    keypoints = np.asarray(out['keypoints'])
    assert keypoints.shape == (17, 3) and np.isfinite(keypoints).all()
    assert out['vis_shape'] == [320, 640, 3]  # 2D panel padded to the square 3D panel
    saved = cv2.imread(str(tmp_path / 'vis' / 'frame.jpg'))
    assert saved is not None and saved.shape == (320, 640, 3)


# --------------------------------------------------------------------------- visualizer shim
def _drawn_canvas(rgb=(1.0, 0.0, 0.0), size=(20, 10)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(size[0] / 100, size[1] / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    fig.patch.set_facecolor(rgb)
    canvas.draw()
    return canvas


def test_canvas_tostring_rgb_packs_rgb_from_buffer_rgba():
    canvas = _drawn_canvas((1.0, 0.0, 0.0), (20, 10))
    data = canvas_tostring_rgb(canvas)
    assert isinstance(data, bytes) and len(data) == 10 * 20 * 3
    image = np.frombuffer(data, np.uint8).reshape(10, 20, 3)
    assert (image == [255, 0, 0]).all()
    # The method on the canvas (real or shim) gives the same bytes.
    assert canvas.tostring_rgb() == data
    with pytest.raises(TypeError, match='needs an Agg canvas with buffer_rgba\\(\\), got object'):
        canvas_tostring_rgb(object())

    class Flat:
        def buffer_rgba(self):
            return np.zeros((4, 4), np.uint8)

    with pytest.raises(ValueError, match=r'shape \(4, 4\), expected \(H, W, 4\)'):
        canvas_tostring_rgb(Flat())


def test_patch_tostring_rgb_only_defines_a_missing_method(monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    if hasattr(FigureCanvasAgg, 'tostring_rgb'):
        monkeypatch.delattr(FigureCanvasAgg, 'tostring_rgb')
    assert patch_tostring_rgb() is True
    assert FigureCanvasAgg.tostring_rgb._mmunsup3d_shim
    assert patch_tostring_rgb() is False  # already there: left alone

    def real(self):
        return b'real'

    monkeypatch.setattr(FigureCanvasAgg, 'tostring_rgb', real)
    assert patch_tostring_rgb() is False
    assert FigureCanvasAgg.tostring_rgb is real
    assert _drawn_canvas().tostring_rgb() == b'real'


def test_pose3d_local_visualizer_draws_a_real_mocap_frame():
    from mmpose.structures import PoseDataSample
    from mmpose.visualization import Pose3dLocalVisualizer
    arrays = MocapProjectionDataset(split='test').arrays
    size = 300
    kpts_2d = arrays['keypoints_2d'][0] * (size / 1000)  # 1000-px camera -> 300-px frame
    kpts_3d = arrays['keypoints_3d'][0]
    # Camera frame -> the axes Pose3DInferencer hands the visualizer: (-x, z, -y), on z = 0.
    shown = np.stack([-kpts_3d[:, 0], kpts_3d[:, 2], -kpts_3d[:, 1]], -1)
    shown[:, 2] -= shown[:, 2].min()

    visualizer = Pose3dLocalVisualizer(name=f'vis3d_{uuid.uuid4().hex[:8]}')
    visualizer.set_dataset_meta(h36m_metainfo())
    visualizer.det_kpt_color = visualizer.kpt_color
    visualizer.det_dataset_skeleton = visualizer.skeleton
    visualizer.det_dataset_link_color = visualizer.link_color
    background = np.full((size, size, 3), 80, np.uint8)

    def draw(pred: InstanceData, det) -> np.ndarray:
        return visualizer.add_datasample(
            'frame', background.copy(), data_sample=PoseDataSample(pred_instances=pred),
            det_data_sample=det, draw_gt=False, dataset_2d='h36m', dataset_3d='h36m',
            num_instances=1)

    det = PoseDataSample(pred_instances=InstanceData(
        keypoints=kpts_2d[None], keypoint_scores=np.ones((1, 17), np.float32)))
    full = draw(InstanceData(keypoints=shown[None], keypoint_scores=np.ones((1, 17))), det)
    empty = draw(InstanceData(), None)
    assert full.shape == empty.shape == (size, 2 * size, 3) and full.dtype == np.uint8
    # Nothing to draw: the frame itself | a blank (white) 3D figure.
    assert (empty[:, :size] == background).all() and (empty[:, size:] == 255).all()

    # 2D panel: changed at every keypoint, and only around the skeleton.
    changed = (full[:, :size] != empty[:, :size]).any(-1)
    for x, y in kpts_2d.round().astype(int):
        assert changed[y, x], (x, y)
    ys, xs = np.nonzero(changed)
    margin = visualizer.radius + visualizer.line_width + 2
    lo, hi = kpts_2d.min(0) - margin, kpts_2d.max(0) + margin
    assert lo[0] <= xs.min() and xs.max() <= hi[0] and lo[1] <= ys.min() and ys.max() <= hi[1]
    assert (~changed).sum() > 0.8 * size * size  # a skeleton, not a repainted frame

    # 3D panel: the skeleton's link colours (Human3.6M: green, orange, blue) were drawn.
    panel = full[:, size:].reshape(-1, 3).astype(int)
    for colour in np.unique(np.asarray(visualizer.link_color), axis=0):
        near = (np.abs(panel - colour).max(-1) <= 40).sum()
        assert near >= 20, (colour, near)
