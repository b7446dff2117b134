"""COCO-17 -> Human3.6M-17 conversion, low-confidence handling and ``demo/lift_demo.py``."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from mmunsup3d.apis.keypoint_convert import (H36M_KEYPOINT_NAMES, coco_to_h36m,
                                             fill_low_confidence)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'demo', 'lift_demo.py')


def _load_demo():
    spec = importlib.util.spec_from_file_location('lift_demo', DEMO)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _hand_coco() -> np.ndarray:
    """A hand-made upright COCO-17 pose (pixels, y down)."""
    k = np.zeros((17, 2))
    k[0] = (100, 40)                    # nose
    k[1], k[2] = (104, 36), (96, 36)    # left / right eye (person faces the camera)
    k[3], k[4] = (110, 38), (90, 38)    # ears
    k[5], k[6] = (120, 70), (80, 70)    # shoulders L / R
    k[7], k[8] = (125, 100), (75, 100)  # elbows
    k[9], k[10] = (128, 130), (72, 130)  # wrists
    k[11], k[12] = (112, 150), (88, 150)  # hips
    k[13], k[14] = (113, 200), (87, 200)  # knees
    k[15], k[16] = (114, 250), (86, 250)  # ankles
    return k


def test_coco_to_h36m_exact_numbers():
    coco = _hand_coco()[None]
    scores = np.linspace(0.5, 0.98, 17)[None]
    h, s = coco_to_h36m(coco, scores)
    h, s = h[0], s[0]
    assert np.allclose(h[0], (100, 150)) and s[0] == pytest.approx(scores[0, [11, 12]].min())
    assert np.allclose(h[8], (100, 70)) and s[8] == pytest.approx(scores[0, [5, 6]].min())
    assert np.allclose(h[7], (100, 110)) and s[7] == pytest.approx(scores[0, [5, 6, 11, 12]].min())
    assert np.allclose(h[9], (100, 40)) and s[9] == pytest.approx(scores[0, 0])
    # head top = mid-eyes (100, 36) + 2 * (mid-eyes - nose) = (100, 28)
    assert np.allclose(h[10], (100, 28)) and s[10] == pytest.approx(scores[0, [0, 1, 2]].min())
    direct = {1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 11: 5, 12: 7, 13: 9, 14: 6, 15: 8,
              16: 10}
    for hj, cj in direct.items():
        assert np.allclose(h[hj], coco[0, cj]) and s[hj] == scores[0, cj], H36M_KEYPOINT_NAMES[hj]
    # An unreliable eye with reliable ears: mid-ears (100, 38) -> head top (100, 34).
    sc = np.ones((1, 17))
    sc[0, 1] = 0.1
    h2, s2 = coco_to_h36m(coco, sc)
    assert np.allclose(h2[0, 10], (100, 34)) and s2[0, 10] == 1.0


def test_fill_low_confidence_rules():
    h, _ = coco_to_h36m(_hand_coco()[None])
    sc = np.ones((1, 17))
    sc[0, [5, 4, 16]] = 0.1  # left knee, left hip, right wrist
    out, low, valid = fill_low_confidence(h, sc, 0.3)
    assert valid.tolist() == [True] and low == [[4, 5, 16]]
    x = h[0]
    # left hip = right hip + (left shoulder - right shoulder)
    assert np.allclose(out[0, 4], x[1] + (x[11] - x[14]))
    assert np.allclose(out[0, 0], (out[0, 1] + out[0, 4]) / 2)
    # left knee: mirrored right thigh from the (filled) left hip
    assert np.allclose(out[0, 5], out[0, 4] + (x[2] - x[1]))
    # right wrist: right elbow + (left wrist - left elbow)
    assert np.allclose(out[0, 16], x[15] + (x[13] - x[12]))
    untouched = [j for j in range(17) if j not in (0, 4, 5, 7, 16)]
    assert np.allclose(out[0, untouched], x[untouched])
    # all core joints low -> invalid
    sc2 = np.ones((1, 17))
    sc2[0, [1, 4, 11, 14]] = 0.0
    assert fill_low_confidence(h, sc2, 0.3)[2].tolist() == [False]


def _mocap_coco(num: int = 3):
    """MMPose-style video predictions built from projected test mocap (COCO-17 order)."""
    from mmunsup3d.datasets import MocapProjectionDataset
    h36m = MocapProjectionDataset(split='test', clips=['walk']).arrays['keypoints_2d'][:num]
    h36m = h36m.astype(np.float64)
    coco = np.zeros((num, 17, 2))
    for hj, cj in {1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 11: 5, 12: 7, 13: 9, 14: 6,
                   15: 8, 16: 10}.items():
        coco[:, cj] = h36m[:, hj]
    nose, head = h36m[:, 9], h36m[:, 10]
    centre = nose + (head - nose) / 3  # so that the head-top rule gives back H36M 10
    side = np.stack([nose[:, 1] - head[:, 1], head[:, 0] - nose[:, 0]], -1) * 0.3
    coco[:, 0] = nose
    coco[:, 1], coco[:, 2] = centre + side, centre - side
    coco[:, 3], coco[:, 4] = centre + 2 * side, centre - 2 * side
    return h36m, coco


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    work = tmp_path_factory.mktemp('lift_demo')
    h36m, coco = _mocap_coco(4)
    scores = np.full((4, 17), 0.9)
    scores[1, 13] = 0.05  # frame 1, instance 0: left knee (COCO 13 -> H36M 5)
    frames = []
    for t in range(4):
        inst = [dict(keypoints=coco[t].tolist(), keypoint_scores=scores[t].tolist(),
                     bbox=[[0, 0, 1, 1]], bbox_score=0.9)]
        if t == 2:  # a second person whose hips and shoulders are all unreliable
            sc = scores[t].copy()
            sc[[5, 6, 11, 12]] = 0.01
            inst.append(dict(keypoints=(coco[t] + 300).tolist(), keypoint_scores=sc.tolist()))
        frames.append(dict(frame_id=t, instances=inst))
    pred = work / 'video.json'
    pred.write_text(json.dumps(frames))
    out = work / 'out'
    proc = subprocess.run([sys.executable, DEMO, str(pred), '--out', str(out),
                           '--max-frames', '3'], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return work, out, h36m, proc


def test_demo_round_trip(demo_run):
    work, out, h36m, proc = demo_run
    doc = json.loads((out / 'keypoints_3d.json').read_text())
    assert doc['input_format'] == 'mmpose_video'
    assert [f['frame_id'] for f in doc['frames']] == [0, 1, 2]
    assert [len(f['instances']) for f in doc['frames']] == [1, 1, 2]
    assert doc['frames'][2]['instances'][1] is None  # skipped, order kept
    assert 'skipped' in proc.stderr
    for t, frame in enumerate(doc['frames']):
        inst = frame['instances'][0]
        assert inst['keypoint_names'] == list(H36M_KEYPOINT_NAMES)
        p3 = np.asarray(inst['keypoints_3d'])
        assert p3.shape == (17, 3) and np.isfinite(p3).all() and np.allclose(p3[0], 0, atol=1e-5)
        assert inst['low_confidence'] == ([5] if t == 1 else [])
        if t != 1:
            # Direct joints, nose and head top convert back exactly; pelvis, spine and thorax
            # are midpoints here, a few pixels off the mocap's own torso joints.
            k2 = np.asarray(inst['keypoints_2d'])
            exact = [j for j in range(17) if j not in (0, 7, 8)]
            assert np.allclose(k2[exact], h36m[t][exact], atol=1e-2)
            assert np.abs(k2[[0, 7, 8]] - h36m[t][[0, 7, 8]]).max() < 10
    # Same model, same 2D -> same 3D as calling the API directly.
    from mmunsup3d.apis import init_lifter, lift_keypoints
    demo = _load_demo()
    model = init_lifter(demo.DEFAULT_CONFIG, demo.DEFAULT_CHECKPOINT)
    first = doc['frames'][0]['instances'][0]
    ref = lift_keypoints(model, np.asarray([first['keypoints_2d']], np.float32),
                         np.full((1, 17), 0.9, np.float32))
    assert np.allclose(first['keypoints_3d'], ref[0], atol=1e-3)
    pngs = sorted(p.name for p in out.iterdir() if p.suffix == '.png')
    assert pngs == [f'frame_{i:06d}.png' for i in range(3)]
    import matplotlib.image as mpimg
    for name in pngs:
        img = mpimg.imread(str(out / name))
        assert img.shape[0] >= 300 and img.shape[1] >= 600
        assert img[..., :3].std() > 0.05  # not a blank canvas
    assert not [p for p in os.listdir(work) if p.startswith('.lift_demo')]



def test_demo_reports_chirality_rate(demo_run):
    import re
    from mmunsup3d.apis import chirality_rate
    _, out, _, proc = demo_run
    doc = json.loads((out / 'keypoints_3d.json').read_text())
    lifted = [inst['keypoints_3d'] for f in doc['frames'] for inst in f['instances']
              if inst is not None]
    assert len(lifted) == 3  # 3 frames, the second person of frame 2 skipped
    assert doc['chirality_rate'] == pytest.approx(chirality_rate(np.asarray(lifted)))
    lines = [line for line in proc.stdout.splitlines() if line.startswith('chirality rate')]
    assert len(lines) == 1
    match = re.fullmatch(r'chirality rate \(mirror-handed poses, label-free\): '
                         r'(\d+\.\d) % of 3 lifted poses', lines[0])
    assert match, lines[0]
    assert float(match.group(1)) == pytest.approx(100 * doc['chirality_rate'], abs=0.05)

def _write(path, obj):
    if str(path).endswith('.npz'):
        np.savez(path, **obj)
    else:
        path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return str(path)


def test_demo_h36m_npz_and_errors(tmp_path, demo_run):
    demo = _load_demo()
    h36m, _ = _mocap_coco(2)
    good = _write(tmp_path / 'good.npz', dict(keypoints=h36m, scores=np.ones((2, 17))))
    out = tmp_path / 'npz_out'
    assert demo.main([good, '--out', str(out)]) == 0
    doc = json.loads((out / 'keypoints_3d.json').read_text())
    assert doc['input_format'] == 'h36m_npz' and len(doc['frames']) == 2
    assert np.allclose(doc['frames'][1]['instances'][0]['keypoints_2d'], h36m[1], atol=1e-2)
    assert doc['frames'][1]['instances'][0]['low_confidence'] == []
    # non-empty --out without --overwrite is refused, with --overwrite it is replaced
    assert demo.main([good, '--out', str(out)]) == 2
    js = _write(tmp_path / 'h36m.json', dict(keypoints=h36m[:1].tolist()))
    assert demo.main([js, '--out', str(out), '--overwrite']) == 0
    assert len(json.loads((out / 'keypoints_3d.json').read_text())['frames']) == 1
    # the earlier run's frame_000001.png is gone: it was the tool's own file
    assert sorted(os.listdir(out)) == ['.mmunsup3d-output.json', 'frame_000000.png',
                                       'keypoints_3d.json']

    nan = h36m.copy()
    nan[0, 3, 1] = np.nan
    bad_cases = {
        'missing': (str(tmp_path / 'nope.json'), 'not found'),
        'extension': (_write(tmp_path / 'x.txt', 'hello'), 'Unsupported input extension'),
        'joints': (_write(tmp_path / 'j.npz', dict(keypoints=np.zeros((2, 16, 2)))),
                   '17 joints'),
        'coco_joints': (_write(tmp_path / 'c.json', [dict(keypoints=np.zeros((16, 2)).tolist(),
                                                           keypoint_scores=[1] * 16)]),
                        '17 joints'),
        'empty': (_write(tmp_path / 'e.json', [dict(frame_id=0, instances=[]),
                                              dict(frame_id=1, instances=[])]), 'no instances'),
        'empty_image': (_write(tmp_path / 'e2.json', []), 'no instances'),
        'nan': (_write(tmp_path / 'n.npz', dict(keypoints=nan)), 'NaN'),
    }
    for name, (path, msg) in bad_cases.items():
        dest = tmp_path / f'out_{name}'
        with pytest.raises(demo.InputError, match=msg):
            demo.run(demo.parse_args([path, '--out', str(dest)]))
        assert not dest.exists(), name
    assert not [p for p in os.listdir(tmp_path) if p.startswith('.lift_demo')]
    # the command line exits non-zero with a clear message and writes nothing
    dest = tmp_path / 'cli_out'
    proc = subprocess.run([sys.executable, DEMO, bad_cases['nan'][0], '--out', str(dest)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2 and 'NaN' in proc.stderr and 'Traceback' not in proc.stderr
    assert not dest.exists()


# ----------------------------------------------------------------- views, GT, underlay, video
ZOO_NAME = 'unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-200e_pybullet-mocap'  # default
ZOO_CONF = 'unsup3d_reslifter-2ddisc-tdisc-conf_1xb256-100e_pybullet-mocap'


@pytest.fixture(scope='module')
def demo():
    return _load_demo()


@pytest.fixture(scope='module')
def walk():
    """Test-split mocap: (26, 17, 2) pixel keypoints and (26, 17, 3) root-relative GT, metres."""
    from mmunsup3d.datasets import MocapProjectionDataset
    arrays = MocapProjectionDataset(split='test', clips=['walk']).arrays
    return arrays['keypoints_2d'].astype(np.float64), arrays['keypoints_3d'].astype(np.float64)


@pytest.fixture(scope='module')
def default_lift(demo, walk):
    """The default checkpoint's lift of the first 3 walk frames (scores 1, as the demo uses)."""
    from mmunsup3d.apis import init_lifter, lift_keypoints
    model = init_lifter(demo.DEFAULT_CONFIG, demo.DEFAULT_CHECKPOINT)
    k2d = walk[0][:3].astype(np.float32)
    return lift_keypoints(model, k2d, np.ones((3, 17), np.float32)).astype(np.float64)


def _renderer(demo, k2d, poses, **kw):
    return demo.Renderer([k2d[None]], np.asarray(poses).reshape(-1, 17, 3), 1, **kw)


def test_nice_ticks_and_n_mpjpe_by_hand(demo):
    assert demo.nice_ticks(1.0).tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert demo.nice_ticks(1.5).tolist() == [-1.0, 0.0, 1.0]
    assert demo.nice_ticks(2.5).tolist() == [-2.0, 0.0, 2.0]
    # Joints on the x axis, GT 5 cm off along y for every joint but the root:
    # <P, G> = <P, P> -> s = 1, error = 16 * 0.05 / 17.
    pred = np.zeros((17, 3))
    pred[:, 0] = 0.1 * np.arange(17)
    gt = pred.copy()
    gt[1:, 1] = 0.05
    err, s = demo.n_mpjpe(pred, gt)
    assert s == pytest.approx(1.0) and err == pytest.approx(0.8 / 17)
    # Scale and root translation of either pose do not matter (after the optimal scale).
    err3, s3 = demo.n_mpjpe(pred + [1.0, 2.0, 3.0], 3 * gt + [0.0, 0.0, 5.0])
    assert s3 == pytest.approx(3.0) and err3 == pytest.approx(3 * 0.8 / 17)
    assert demo.frame_title(4, [None]) == 'frame 4'
    assert demo.frame_title(4, [0.0941, None]).startswith('frame 4  |  N-MPJPE 94.1, n/a mm')


def test_renderer_panels_side_view_colours(demo, walk):
    k2d, gt3d = walk[0][0], walk[1][0]
    r = _renderer(demo, k2d, [gt3d], dpi=40)
    fig = r.figure('t', k2d[None], [[]], [gt3d])
    axes = fig.axes
    assert [a.get_title() for a in axes] == [
        'input 2D (Human3.6M-17)', 'camera view (3D, orthographic)',
        'side view (camera view + 90° azimuth)']
    cam, side = axes[1], axes[2]
    assert side.azim - cam.azim == pytest.approx(90.0) and cam.elev == side.elev
    # Equal scaling: a cube of +-1 m, the same box on every axis.
    for ax in (cam, side):
        assert ax.get_xlim3d() == ax.get_ylim3d() == ax.get_zlim3d() == (-1.0, 1.0)
        box = ax.get_box_aspect()
        assert np.allclose(box / box[0], 1.0)
    assert [t.get_text() for t in cam.get_xticklabels()] == ['-1', '-0.5', '0', '0.5', '1']
    assert [t.get_text() for t in side.get_yticklabels()] == ['-1', '-0.5', '0', '0.5', '1']
    # 16 bones per view; left limbs blue, right limbs red, torso grey.
    for ax in (axes[0], cam, side):
        colours = [line.get_color() for line in ax.get_lines()]
        assert len(colours) == 16
        assert colours.count('tab:blue') == 6 and colours.count('tab:red') == 6
    # A depth-only change moves the skeleton in the side view along its horizontal axis.
    deeper = gt3d.copy()
    deeper[14:, 2] += 0.5  # right arm (shoulder, elbow, wrist) 0.5 m further from the camera
    side2 = r.figure('t', k2d[None], [[]], [deeper]).axes[2]
    lines = [np.asarray(line.get_data_3d()) for line in side2.get_lines()]
    arm = [np.asarray(line.get_data_3d()) for line in side.get_lines()]
    moved = [np.abs(a[1] - b[1]).max() for a, b in zip(lines, arm)]
    assert max(moved) == pytest.approx(0.5) and sorted(moved)[:13] == [0.0] * 13


def test_renderer_gt_overlay_and_image_underlay(demo, walk):
    k2d, gt3d = walk[0][0], walk[1][0]
    pred = gt3d * 0.9
    r = _renderer(demo, k2d, [pred, gt3d], dpi=40, with_gt=True, image_sizes=[(1000, 1000)])
    fig = r.figure('t', k2d[None], [[]], [pred], [gt3d])
    for ax in fig.axes[1:]:
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == '--']
        assert len(dashed) == 16 and {line.get_color() for line in dashed} == {'black'}
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        'left', 'right', 'ground truth', 'low confidence (replaced)']
    # The underlay changes the 2D panel only; the 3D panels stay pixel-identical.
    plain = r.render('t', k2d[None], [[]], [pred], [gt3d])
    image = np.zeros((1000, 1000, 3), np.uint8)
    image[..., 1] = 200  # green
    under = r.render('t', k2d[None], [[]], [pred], [gt3d], image=image)
    assert plain.shape == under.shape == (192, 540, 3)  # 13.5 x 4.8 in at 40 dpi
    split = int(0.36 * plain.shape[1])
    assert (plain[30:170, split:] == under[30:170, split:]).all()
    changed = (plain[30:170, :split] != under[30:170, :split]).any(-1)
    assert changed.mean() > 0.3
    centre = under[100, int(0.2 * plain.shape[1])]
    assert centre[1] > 150 and centre[0] < 60  # the green image shows through
    assert fig.axes[0].get_xlim() == (-0.5, 999.5)


def _gt_with_known_error(pred: np.ndarray) -> np.ndarray:
    """GT whose N-MPJPE to ``pred`` is known by construction: every non-root joint moved 0.1 m
    perpendicular to itself, so the optimal scale stays 1 and the error is 16 * 0.1 / 17."""
    p = pred - pred[:1]
    side = np.cross(p, [0.0, 0.0, 1.0])
    side[1:] /= np.linalg.norm(side[1:], axis=-1, keepdims=True)
    return p + 0.1 * side


def test_gt_panel_n_mpjpe_in_title_and_json(demo, walk, default_lift, tmp_path, monkeypatch,
                                            capsys):
    k2d = walk[0][:2]
    inp = tmp_path / 'in.npz'
    np.savez(inp, keypoints=k2d)
    shift = np.array([0.3, -0.2, 4.0])  # GT need not be root-relative
    gt = np.stack([0.5 * default_lift[0] + shift, _gt_with_known_error(default_lift[1]) + shift])
    np.save(tmp_path / 'gt.npy', gt)
    titles = []
    render = demo.Renderer.render

    def spy(self, title, *a, **kw):
        titles.append(title)
        return render(self, title, *a, **kw)

    monkeypatch.setattr(demo.Renderer, 'render', spy)
    out = tmp_path / 'out'
    assert demo.main([str(inp), '--out', str(out), '--gt', str(tmp_path / 'gt.npy'),
                      '--dpi', '40']) == 0
    doc = json.loads((out / 'keypoints_3d.json').read_text())
    inst = [f['instances'][0] for f in doc['frames']]
    assert inst[0]['n_mpjpe'] == pytest.approx(0.0, abs=1e-5)
    assert inst[0]['gt_scale'] == pytest.approx(0.5, abs=1e-5)
    assert inst[1]['n_mpjpe'] == pytest.approx(1.6 / 17, abs=1e-5)  # 94.1 mm
    assert inst[1]['gt_scale'] == pytest.approx(1.0, abs=1e-5)
    assert doc['n_mpjpe_mean'] == pytest.approx(0.8 / 17, abs=1e-5)
    assert doc['ground_truth'] == str(tmp_path / 'gt.npy')
    assert titles[0].startswith('frame 0  |  N-MPJPE 0.0 mm  (prediction rescaled to the GT')
    assert titles[1].startswith('frame 1  |  N-MPJPE 94.1 mm')
    assert 'N-MPJPE vs --gt: 47.1 mm (mean of 2 poses' in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ['.mmunsup3d-output.json', 'frame_000000.png',
                                       'frame_000001.png', 'keypoints_3d.json']


def test_sequence_gif_with_image_folder(demo, walk, tmp_path):
    from PIL import Image
    inp = tmp_path / 'in.npz'
    np.savez(inp, keypoints=walk[0][:3])
    frames = tmp_path / 'frames'
    frames.mkdir()
    for i in range(3):  # sorted by name: b, c, d
        Image.new('RGB', (1000, 1000), (40 * i, 90, 160)).save(frames / f'{"bcd"[i]}.png')
    (frames / 'notes.txt').write_text('not an image')
    np.savez(tmp_path / 'gt.npz', keypoints_3d=walk[1][:3])
    out = tmp_path / 'out'
    assert demo.main([str(inp), '--out', str(out), '--image', str(frames), '--gt',
                      str(tmp_path / 'gt.npz'), '--video', 'gif', '--fps', '5',
                      '--dpi', '40']) == 0
    assert sorted(os.listdir(out)) == ['.mmunsup3d-output.json', 'animation.gif',
                                       'frame_000000.png', 'frame_000001.png',
                                       'frame_000002.png', 'keypoints_3d.json']
    with Image.open(out / 'animation.gif') as gif:
        assert gif.n_frames == 3 and gif.size == (540, 192)
        assert gif.info['duration'] == 200
        gif.seek(2)
        last = np.asarray(gif.convert('RGB'))
    png = np.asarray(Image.open(out / 'frame_000002.png').convert('RGB'))
    assert np.abs(last.astype(int) - png).mean() < 8  # the same frame, palette-quantised
    # The image of frame 2 (d.png, red 80) is under its 2D panel.
    assert abs(int(png[100, 108, 0]) - 80) < 20 and abs(int(png[100, 108, 2]) - 160) < 20
    assert json.loads((out / 'keypoints_3d.json').read_text())['animation'] == 'animation.gif'


def test_sequence_mp4(demo, walk, tmp_path):
    cv2 = pytest.importorskip('cv2')
    inp = tmp_path / 'in.npz'
    np.savez(inp, keypoints=walk[0][:3])
    out = tmp_path / 'out'
    assert demo.main([str(inp), '--out', str(out), '--video', 'mp4', '--dpi', '40']) == 0
    cap = cv2.VideoCapture(str(out / 'animation.mp4'))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 3 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 540
    cap.release()
    # One frame: a warning, no animation.
    one = tmp_path / 'one.npz'
    np.savez(one, keypoints=walk[0][:1])
    with pytest.warns(UserWarning, match='one frame; no animation written'):
        assert demo.main([str(one), '--out', str(tmp_path / 'o1'), '--video', 'gif',
                          '--dpi', '40']) == 0
    assert 'animation.gif' not in os.listdir(tmp_path / 'o1')


def test_zoo_name_checkpoint(demo, walk, default_lift, tmp_path, monkeypatch):
    from mmunsup3d.utils.zoo import ZOO_URL_ENV, resolve_model
    monkeypatch.delenv(ZOO_URL_ENV, raising=False)
    monkeypatch.setenv('MMUNSUP3D_CACHE_DIR', str(tmp_path / 'cache'))
    inp = tmp_path / 'in.npz'
    np.savez(inp, keypoints=walk[0][:2])
    out = tmp_path / 'out'
    assert demo.main([str(inp), '--out', str(out), '--checkpoint', ZOO_NAME,
                      '--dpi', '40']) == 0
    doc = json.loads((out / 'keypoints_3d.json').read_text())
    assert doc['checkpoint'] == ZOO_NAME and doc['config'] == resolve_model(ZOO_NAME)['config']
    assert doc['checkpoint_file'] == str(tmp_path / 'cache' / osp.basename(
        demo.DEFAULT_CHECKPOINT))
    lifted = np.asarray([f['instances'][0]['keypoints_3d'] for f in doc['frames']])
    assert np.allclose(lifted, default_lift[:2], atol=1e-5)  # the same weights
    # Without --config a zoo checkpoint brings its own config; a zoo --config is resolved.
    cfg, ckpt = demo.resolve_model_files(None, ZOO_CONF)
    assert cfg == resolve_model(ZOO_CONF)['config'] and cfg.endswith(f'{ZOO_CONF}.py')
    assert ckpt.startswith(str(tmp_path / 'cache'))
    assert demo.resolve_model_files(ZOO_CONF, demo.DEFAULT_CHECKPOINT)[0] == cfg
    with pytest.raises(demo.InputError, match=r'^Unknown model "no-such-model"\. Known models: '):
        demo.run(demo.parse_args([str(inp), '--out', str(tmp_path / 'o2'), '--checkpoint',
                                  'no-such-model']))
    with pytest.raises(demo.InputError, match='File not found: .*missing.pth'):
        demo.run(demo.parse_args([str(inp), '--out', str(tmp_path / 'o2'), '--checkpoint',
                                  str(tmp_path / 'missing.pth')]))
    assert not (tmp_path / 'o2').exists()


def test_gt_image_and_option_errors(demo, walk, tmp_path):
    from PIL import Image
    inp = tmp_path / 'in.npz'
    np.savez(inp, keypoints=walk[0][:2])
    np.save(tmp_path / 'short.npy', np.zeros((2, 16, 3)))
    np.save(tmp_path / 'three.npy', np.zeros((3, 17, 3)))
    obj = np.empty(2, dtype=object)
    np.save(tmp_path / 'obj.npy', obj, allow_pickle=True)
    np.savez(tmp_path / 'two.npz', a=np.zeros((2, 17, 3)), b=np.zeros((2, 17, 3)))
    (tmp_path / 'gt.json').write_text(json.dumps({'poses': []}))
    (tmp_path / 'gt.txt').write_text('1 2 3')
    folder = tmp_path / 'imgs'
    folder.mkdir()
    Image.new('RGB', (8, 8)).save(folder / 'a.png')
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    gt = ['--gt']
    cases = [
        (gt + [str(tmp_path / 'short.npy')],
         r'ground truth must have shape \(N, 17, 3\) \(17 joints\), got \(2, 16, 3\)'),
        (gt + [str(tmp_path / 'three.npy')],
         r'holds 3 pose\(s\) but the input has 2 instance\(s\) in 2 frame\(s\)'),
        (gt + [str(tmp_path / 'obj.npy')], 'is an object array'),
        (gt + [str(tmp_path / 'two.npz')], r'expected an array "keypoints_3d" or a single '
         r"array, found \['a', 'b'\]"),
        (gt + [str(tmp_path / 'gt.json')], r'needs "keypoints_3d" \(keys \[\'poses\'\]\)'),
        (gt + [str(tmp_path / 'gt.txt')], 'Unsupported --gt extension ".txt"'),
        (gt + [str(tmp_path / 'nope.npy')], '--gt file not found'),
        (['--image', str(folder)],
         r'the folder holds 1 image\(s\) but the input has 2 frame\(s\)'),
        (['--image', str(tmp_path / 'nope.png')], '--image not found'),
        (['--image', str(tmp_path / 'gt.txt')], 'not an image file'),
        (['--image', str(tmp_path / 'broken.png')], 'Cannot read image .*broken.png'),
        (['--fps', '0'], r'--fps must be in \(0, 100\], got 0.0'),
        (['--dpi', '5'], r'--dpi must be in \[20, 600\], got 5'),
    ]
    for extra, msg in cases:
        dest = tmp_path / 'out'
        with pytest.raises(demo.InputError, match=msg):
            demo.run(demo.parse_args([str(inp), '--out', str(dest)] + extra))
        assert not dest.exists(), extra
    # --out may not be the folder of the --image frames (nor hold the --gt file).
    with pytest.raises(demo.InputError, match='holds the input'):
        demo.run(demo.parse_args([str(inp), '--out', str(folder), '--image', str(folder),
                                  '--overwrite']))
    assert os.listdir(folder) == ['a.png']


def test_lift_keypoints_refuses_degenerate_poses(demo, walk):
    """Collinear poses and poses with all joints but one at one point have no meaningful 2D
    scale: ``lift_keypoints`` names the first one; real poses (every mocap clip) pass."""
    from mmunsup3d.apis import init_lifter, lift_keypoints
    from mmunsup3d.datasets import MocapProjectionDataset
    model = init_lifter(demo.DEFAULT_CONFIG, demo.DEFAULT_CHECKPOINT)
    k = walk[0][:3].copy()
    line = k.copy()
    line[1, :, 1] = 0.5 * line[1, :, 0] + 7.0
    with pytest.raises(ValueError, match='sample 1 are degenerate: all 17 joints lie on one line'):
        lift_keypoints(model, line)
    one = k.copy()
    one[2, 1:] = one[2, 0]
    one[2, 5] += 50.0  # 16 joints at the pelvis, the left knee elsewhere
    with pytest.raises(ValueError, match='sample 2 are degenerate: all 17 joints lie on one line'):
        lift_keypoints(model, one)
    near = line.copy()
    near[1, :, 1] += 1e-4 * np.sin(np.arange(17))  # collinear up to 0.1 mpx over ~200 px
    with pytest.raises(ValueError, match='sample 1 are degenerate'):
        lift_keypoints(model, near)
    dot = k.copy()
    dot[0] = 500.0 + 1e-9 * np.arange(34).reshape(17, 2)
    with pytest.raises(ValueError, match='sample 0 are degenerate: all 17 joints lie at one point'):
        lift_keypoints(model, dot)
    assert lift_keypoints(model, k).shape == (3, 17, 3)
    from mmunsup3d.apis.inference import degenerate_poses  # the test lift_demo uses to skip
    assert degenerate_poses(line).tolist() == [False, True, False]
    assert degenerate_poses(np.zeros((0, 17, 2))).shape == (0, )
    every = np.concatenate([MocapProjectionDataset(split=s).arrays['keypoints_2d']
                            for s in ('train', 'test')])
    assert not degenerate_poses(every).any()
