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
