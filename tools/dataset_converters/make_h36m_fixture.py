"""Write a small Human3.6M look-alike in exactly MMPose's file layout, from the shipped mocap.

Usage::

    python tools/dataset_converters/make_h36m_fixture.py --out data/h36m_fixture

Output (the layout of MMPose's ``tools/dataset_converters/preprocess_h36m.py`` at 50 fps, plus
2D detections where MMPose's configs look for them)::

    DIR/
      annotation_body3d/cameras.pkl          {(subject, camera_id): R, T, c, f, k, p, w, h, ...}
      annotation_body3d/fps50/h36m_train.npz S1, S5, S6, S7, S8
      annotation_body3d/fps50/h36m_test.npz  S9, S11
      joint_2d_det_files/cpn_ft_h36m_dbb_{train,test}.npy   synthetic detections (NOT CPN)
      FIXTURE.md                             what this is (also marks the folder as ours)

Content: the 15 DeepMimic clips of ``data/pybullet_mocap/h36m17_mocap.npz`` (mm, Z-up, 50 fps)
stand in for Human3.6M's 15 actions (an arbitrary one-to-one naming, :data:`CLIP_ACTIONS`).
Every subject performs every action: training subjects take overlapping stretches of the first
~70 % of each clip, test subjects stretches of its last 25 % (after a 5-frame gap), so no test
frame is a training frame. Each performance is scaled to the subject's body size, turned to a
random heading and placed near the middle of the room, and filmed by the subject's 4 cameras
(Human3.6M's ids; a corner rig drawn once, slightly re-calibrated per subject, with Human3.6M-like
lens distortion). Conventions are MMPose's: ``S`` camera-frame metres, ``part`` distorted
pixels, ``cameras.pkl`` ``R`` camera-to-world, ``T`` the camera centre in metres ``(3, 1)``.
Deterministic (fixed seed; byte-identical files), written atomically, ~4 MB, ~1 s.
"""
import argparse
import io
import os
import os.path as osp
import pickle
import shutil
import sys
import tempfile
import time
import zipfile
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, REPO)

from mmunsup3d.datasets.cameras import (camera_to_pixel, look_at_camera,  # noqa: E402
                                        sample_h36m_like_camera, world_to_camera)
from mmunsup3d.datasets.mocap_dataset import DEFAULT_MOCAP, resolve_data_file  # noqa: E402

TRAIN_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8')
TEST_SUBJECTS = ('S9', 'S11')
ALL_SUBJECTS = tuple(f'S{i}' for i in range(1, 12))  # cameras.pkl covers S1-S11, as MMPose's
CAMERA_IDS = ('54138969', '55011271', '58860488', '60457274')
# Image sizes as in MMPose's preprocess_h36m.py.
IMAGE_SIZES = {'54138969': (1000, 1002), '55011271': (1000, 1000),
               '58860488': (1000, 1000), '60457274': (1000, 1002)}
# Clip -> Human3.6M action name (a naming only: the motions are DeepMimic's).
CLIP_ACTIONS = {
    'dance_a': 'Directions', 'dance_b': 'Discussion', 'crawl': 'Eating', 'punch': 'Greeting',
    'cartwheel': 'Phoning', 'spinkick': 'Photo', 'kick': 'Posing', 'spin': 'Purchases',
    'getup_faceup': 'Sitting', 'getup_facedown': 'SittingDown', 'backflip': 'Smoking',
    'jump': 'Waiting', 'run': 'WalkDog', 'walk': 'Walking', 'roll': 'WalkTogether',
}
ACTION_ORDER = ('Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning', 'Photo', 'Posing',
                'Purchases', 'Sitting', 'SittingDown', 'Smoking', 'Waiting', 'WalkDog',
                'Walking', 'WalkTogether')
# Body size of each subject relative to the mocap skeleton.
SUBJECT_SCALE = {'S1': 1.00, 'S5': 0.94, 'S6': 1.06, 'S7': 0.96, 'S8': 1.03, 'S9': 1.05,
                 'S11': 0.98}
TEST_FRACTION = 0.25
GAP_FRAMES = 5
TRAIN_STRETCH = 0.3  # each training subject performs this fraction of a clip's training part
TEST_STRETCH = 0.6   # each test subject performs this fraction of a clip's test part
# Detector noise (pixels for a 400-px-tall person) per Human3.6M-17 joint: extremities worst.
DET_SIGMA = np.array([1.0, 1.2, 1.5, 2.0, 1.2, 1.5, 2.0, 1.0, 1.0, 1.0, 1.3, 1.2, 1.6, 2.2,
                      1.2, 1.6, 2.2]) * 2.0
LIMB_PAIRS = ((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16))
MARKER = 'FIXTURE.md'
FILES = ('annotation_body3d/cameras.pkl', 'annotation_body3d/fps50/h36m_train.npz',
         'annotation_body3d/fps50/h36m_test.npz', 'joint_2d_det_files/cpn_ft_h36m_dbb_train.npy',
         'joint_2d_det_files/cpn_ft_h36m_dbb_test.npy', MARKER)


# ----------------------------------------------------------------------------- cameras
def distort_and_project(cam_pts: np.ndarray, cam: Dict[str, Any]) -> np.ndarray:
    """Camera-frame points -> pixels with Human3.6M's radial (k1-k3) + tangential (p) model.

    Same model as MMPose's ``SimpleCamera.camera_to_pixel`` (tests cross-check the two).
    """
    xy = cam_pts[..., :2] / cam_pts[..., 2:]
    k, p = cam['k'].ravel(), cam['p'].ravel()
    r2 = (xy**2).sum(-1)
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tangential = 2 * (p[1] * xy[..., 0] + p[0] * xy[..., 1])
    xy = xy * (radial + tangential)[..., None] + r2[..., None] * p[::-1]
    return camera_to_pixel(np.concatenate([xy, np.ones_like(xy[..., :1])], -1),
                           cam['f'].ravel(), cam['c'].ravel())


def make_cameras(rng: np.random.Generator) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """A 4-camera corner rig, re-calibrated (slightly perturbed) for each of S1-S11.

    Returns MMPose's ``cameras.pkl`` content; ``R_w2c`` (our world->camera rotation) is added
    for the generator and removed before writing.
    """
    rig = []
    for i, cam_id in enumerate(CAMERA_IDS):
        az = np.deg2rad(45.0 + 90.0 * i + rng.uniform(-8, 8))
        cam = sample_h36m_like_camera(rng, np.zeros(3), azimuth=az)
        cam['k'] = np.array([-0.207, 0.248, -0.003]) + rng.normal(0, [0.005, 0.01, 0.0005])
        cam['p'] = rng.normal(0, 0.001, size=2)
        rig.append(cam)
    cameras = {}
    for subject in ALL_SUBJECTS:
        for i, (cam_id, base) in enumerate(zip(CAMERA_IDS, rig)):
            centre = base['T'] + rng.normal(0, 0.01, size=3)
            aim = centre + base['R'][2] * 5.0 + rng.normal(0, 0.01, size=3)
            R_w2c = look_at_camera(centre, aim, roll_deg=rng.uniform(-1.0, 1.0))
            w, h = IMAGE_SIZES[cam_id]
            cameras[(subject, cam_id)] = {
                'R': R_w2c.T.copy(),  # MMPose's R maps camera to world coordinates
                'T': centre.reshape(3, 1),  # camera centre in the world, metres
                'c': (base['c'] + rng.normal(0, 0.3, size=2)).reshape(2, 1),
                'f': (base['f'] + rng.normal(0, 0.5, size=2)).reshape(2, 1),
                'k': base['k'].reshape(3, 1).copy(),
                'p': base['p'].reshape(2, 1).copy(),
                'w': w, 'h': h, 'name': f'camera{i + 1}', 'id': cam_id,
                'R_w2c': R_w2c,
            }
    return cameras


# ----------------------------------------------------------------------------- performances
def stretches(num_frames: int) -> Dict[str, np.ndarray]:
    """Frames of a clip performed by each subject (train and test parts never overlap)."""
    n_test = max(8, int(round(num_frames * TEST_FRACTION)))
    n_train = num_frames - n_test - GAP_FRAMES
    out = {}
    length = max(8, int(round(n_train * TRAIN_STRETCH)))
    for k, subject in enumerate(TRAIN_SUBJECTS):
        start = int(round(k * (n_train - length) / (len(TRAIN_SUBJECTS) - 1)))
        out[subject] = np.arange(start, start + length)
    length = max(6, int(round(n_test * TEST_STRETCH)))
    out['S9'] = np.arange(num_frames - n_test, num_frames - n_test + length)
    out['S11'] = np.arange(num_frames - length, num_frames)
    return out


def place(world_mm: np.ndarray, subject: str, rng: np.random.Generator) -> np.ndarray:
    """Mocap (mm) -> the subject's performance in the room (metres, Z-up, around the origin)."""
    pts = world_mm.astype(np.float64) / 1000.0
    ground = np.array([*pts[:, 0, :2].mean(0), 0.0])
    a = rng.uniform(0, 2 * np.pi)
    yaw = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    offset = np.array([*rng.uniform(-0.4, 0.4, size=2), 0.0])
    return (pts - ground) * SUBJECT_SCALE[subject] @ yaw.T + offset


def detections(part: np.ndarray, video: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Detector-like 2D: temporally correlated per-joint noise, limb swaps, outliers, scores."""
    height = part[..., 1].max(1) - part[..., 1].min(1)
    sigma = DET_SIGMA[None, :] * (height / 400.0)[:, None]                    # (N, J)
    white = rng.standard_normal(part.shape[:2] + (2,))
    noise = np.empty_like(white)
    rho = 0.7  # AR(1) along each video: detections jitter smoothly, not independently
    for v in np.unique(video):
        rows = np.flatnonzero(video == v)
        noise[rows[0]] = white[rows[0]]
        for a, b in zip(rows[:-1], rows[1:]):
            noise[b] = rho * noise[a] + np.sqrt(1 - rho**2) * white[b]
    det = part[..., :2] + noise * sigma[..., None]
    swap = rng.random((len(part), len(LIMB_PAIRS))) < 0.005                  # left/right mix-up
    for j, (a, b) in enumerate(LIMB_PAIRS):
        det[swap[:, j], a], det[swap[:, j], b] = det[swap[:, j], b], det[swap[:, j], a].copy()
    outlier = rng.random(part.shape[:2]) < 0.01
    det[outlier] += rng.normal(0, 30.0, size=(int(outlier.sum()), 2))
    err = np.linalg.norm(det - part[..., :2], axis=-1)
    score = np.clip(0.97 * np.exp(-0.5 * (err / (3 * sigma))**2) + rng.normal(0, 0.01, err.shape),
                    0.05, 0.99)
    return np.concatenate([det, score[..., None]], -1).astype(np.float32)


def build_fixture(mocap_file: str = DEFAULT_MOCAP, seed: int = 0) -> Dict[str, Any]:
    """Compute every file's content in memory.

    Returns:
        dict with ``cameras`` (``cameras.pkl`` content), ``train``/``test`` (annotation arrays)
        and ``det_train``/``det_test`` (``(N, 17, 3)`` detections).
    """
    rng = np.random.default_rng(seed)
    cameras = make_cameras(rng)
    with np.load(resolve_data_file(mocap_file)) as data:
        clips = {str(n): data[str(n)] for n in data['clip_names']}
    missing = sorted(set(CLIP_ACTIONS) - set(clips))
    if missing:
        raise KeyError(f'{mocap_file} lacks clip(s) {missing}')
    action_clip = {a: c for c, a in CLIP_ACTIONS.items()}
    out: Dict[str, Any] = {'cameras': {k: {kk: vv for kk, vv in v.items() if kk != 'R_w2c'}
                                       for k, v in cameras.items()}}
    for split, subjects in (('train', TRAIN_SUBJECTS), ('test', TEST_SUBJECTS)):
        names: List[np.ndarray] = []
        parts: List[np.ndarray] = []
        points: List[np.ndarray] = []
        videos: List[np.ndarray] = []
        for subject in subjects:
            for action in ACTION_ORDER:
                clip = clips[action_clip[action]]
                world = place(clip[stretches(len(clip))[subject]], subject, rng)
                for cam_id in CAMERA_IDS:
                    cam = cameras[(subject, cam_id)]
                    cam_pts = world_to_camera(world, cam['R_w2c'], cam['T'].ravel())
                    if (cam_pts[..., 2] < 1.0).any():
                        raise ValueError(f'{subject} {action} is too close to camera {cam_id}')
                    pix = distort_and_project(cam_pts, cam)
                    # MMPose's naming: <subject>/<base>/<base>_<frame>.jpg, base as below.
                    base = f'{subject}_{action}_1.{cam_id}'
                    frames = np.char.zfill(np.arange(1, len(world) + 1).astype(str), 6)
                    names.append(np.char.add(f'{subject}/{base}/{base}_',
                                             np.char.add(frames, '.jpg')))
                    parts.append(pix)
                    points.append(cam_pts)
                    videos.append(np.full(len(world), len(videos)))
        pix = np.concatenate(parts)
        ones = np.ones(pix.shape[:2] + (1,))
        lo, hi = pix.min(1), pix.max(1)
        out[split] = {
            'imgname': np.concatenate(names),
            'center': ((lo + hi) / 2).astype(np.float32),
            'scale': (1.2 * (hi - lo).max(1) / 200.0).astype(np.float32),
            'part': np.concatenate([pix, ones], -1).astype(np.float32),
            'S': np.concatenate([np.concatenate(points), ones], -1).astype(np.float32),
        }
        out[f'det_{split}'] = detections(out[split]['part'], np.concatenate(videos), rng)
    return out


# ----------------------------------------------------------------------------- writing
def _write_npz(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with fixed timestamps, so equal content gives equal bytes."""
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f'{key}.npy', date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, buf.getvalue())


def _describe(content: Dict[str, Any], seed: int) -> str:
    rows = {s: len(content[s]['imgname']) for s in ('train', 'test')}
    mapping = '\n'.join(f'- {a}: `{c}`' for c, a in sorted(CLIP_ACTIONS.items(),
                                                            key=lambda x: x[1]))
    return (f'# Human3.6M-format fixture (synthetic)\n\nWritten by '
            f'`tools/dataset_converters/make_h36m_fixture.py` (seed {seed}) from the DeepMimic '
            f'mocap in `data/pybullet_mocap/`. NOT Human3.6M data, and the detection files are '
            f'synthetic noise, not CPN; only the layout and conventions are MMPose\'s.\n\n'
            f'Rows: train {rows["train"]} ({", ".join(TRAIN_SUBJECTS)}), test {rows["test"]} '
            f'({", ".join(TEST_SUBJECTS)}); 4 cameras per subject; 50 fps.\n\n'
            f'Action names -> clips:\n{mapping}\n')


def write_fixture(out: str, mocap_file: str = DEFAULT_MOCAP, seed: int = 0,
                  force: bool = False) -> Dict[str, int]:
    """Build the fixture and write it to ``out`` atomically.

    A new (or empty) ``out`` is created by one rename. In an existing folder only the fixture's
    own files (``FILES``) are replaced, each with an atomic ``os.replace``; nothing else in the
    folder is touched. A non-empty folder without the fixture's marker (e.g. real Human3.6M) is
    refused unless ``force``.

    Returns:
        number of rows per split.
    """
    out = osp.abspath(out)
    ours = osp.isfile(osp.join(out, MARKER)) or (osp.isdir(out) and not os.listdir(out))
    if osp.exists(out) and not ours and not force:
        raise FileExistsError(f'{out} exists and was not written by this tool; pass --force to '
                              f'replace only {", ".join(FILES)} in it')
    content = build_fixture(mocap_file, seed)
    parent = osp.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.tmp-', dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the dataset is not
    try:
        os.makedirs(osp.join(tmp, 'annotation_body3d', 'fps50'))
        os.makedirs(osp.join(tmp, 'joint_2d_det_files'))
        with open(osp.join(tmp, FILES[0]), 'wb') as f:
            pickle.dump(content['cameras'], f, protocol=4)
        _write_npz(osp.join(tmp, FILES[1]), content['train'])
        _write_npz(osp.join(tmp, FILES[2]), content['test'])
        np.save(osp.join(tmp, FILES[3]), content['det_train'])
        np.save(osp.join(tmp, FILES[4]), content['det_test'])
        with open(osp.join(tmp, MARKER), 'w') as f:
            f.write(_describe(content, seed))
        if not osp.exists(out) or not os.listdir(out):
            if osp.isdir(out):
                os.rmdir(out)  # empty
            os.rename(tmp, out)
        else:
            # Never delete the folder: a user may have added files to it. Only the fixture's
            # own files (a fixed list) are replaced, each atomically.
            for rel in FILES:
                os.makedirs(osp.dirname(osp.join(out, rel)), exist_ok=True)
                os.replace(osp.join(tmp, rel), osp.join(out, rel))
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp)
    return {s: len(content[s]['imgname']) for s in ('train', 'test')}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True,
                        help='dataset root to write (e.g. data/h36m_fixture)')
    parser.add_argument('--mocap', default=DEFAULT_MOCAP, help='mocap npz (pybullet_mocap.py)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true',
                        help='write into a folder this tool did not create (replaces only its '
                        'own files)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    tic = time.perf_counter()
    rows = write_fixture(args.out, args.mocap, args.seed, args.force)
    size = sum(osp.getsize(osp.join(args.out, f)) for f in FILES)
    print(f'Wrote {args.out}: {rows["train"]} train / {rows["test"]} test rows, '
          f'{size / 2**20:.1f} MiB, in {time.perf_counter() - tic:.1f} s')


if __name__ == '__main__':
    main()
