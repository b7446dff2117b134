"""Human3.6M in MMPose's format: the fixture, equality with MMPose's ``Human36mDataset``,
training/test arrays, errors, and a short end-to-end run of ``configs/unsup3d_h36m.py``."""
import math
import os
import os.path as osp
import pickle
import re
import uuid
from collections import defaultdict

import numpy as np
import pytest

from helpers import load_tool
from mmpose.datasets.datasets.body3d import Human36mDataset
from mmpose.registry import DATASETS
from mmpose.utils.camera import SimpleCamera
from mmunsup3d.datasets import H36MLiftingDataset, unsup3d_collate
from mmunsup3d.datasets.h36m_dataset import _H36M_META

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = 'annotation_body3d/fps50/h36m_train.npz'
TEST = 'annotation_body3d/fps50/h36m_test.npz'
CAMS = 'annotation_body3d/cameras.pkl'
DET_TRAIN = 'joint_2d_det_files/cpn_ft_h36m_dbb_train.npy'
DET_TEST = 'joint_2d_det_files/cpn_ft_h36m_dbb_test.npy'
NAME = re.compile(r'^(S\d+)/\1_(\w+)_1\.(\d{8})/\1_\2_1\.\3_(\d{6})\.jpg$')
ACTIONS = {'Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning', 'Photo', 'Posing',
           'Purchases', 'Sitting', 'SittingDown', 'Smoking', 'Waiting', 'WalkDog', 'Walking',
           'WalkTogether'}


def _tool():
    return load_tool('dataset_converters', 'make_h36m_fixture.py')


@pytest.fixture(scope='session')
def h36m_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('h36m_fixture') / 'h36m')
    _tool().write_fixture(root)
    return root


@pytest.fixture(scope='session')
def train_set(h36m_root):
    return H36MLiftingDataset(ann_file=TRAIN, data_root=h36m_root, camera_param_file=CAMS)


def _ours(root, ann, **kw):
    return H36MLiftingDataset(ann_file=ann, data_root=root, **kw)


def _mmpose(root, ann, **kw):
    return Human36mDataset(ann_file=ann, data_root=root, metainfo=dict(from_file=_H36M_META),
                           **kw)


def _small_npz(src, dst, rows=40, **changes):
    """Copy the first ``rows`` rows of an annotation file, with some keys changed/removed."""
    with np.load(src) as data:
        arrays = {k: data[k][:rows] for k in data.files}
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value(arrays[key]) if callable(value) else value
    np.savez(dst, **arrays)
    return str(dst)


# --------------------------------------------------------------------------- the fixture
def test_fixture_layout_matches_mmpose(h36m_root):
    for rel in (TRAIN, TEST, CAMS, DET_TRAIN, DET_TEST):
        assert osp.isfile(osp.join(h36m_root, rel)), rel
    total = sum(osp.getsize(osp.join(d, f)) for d, _, fs in os.walk(h36m_root) for f in fs)
    assert total < 8 * 2**20
    subjects = {}
    for ann, det, expected in ((TRAIN, DET_TRAIN, {'S1', 'S5', 'S6', 'S7', 'S8'}),
                               (TEST, DET_TEST, {'S9', 'S11'})):
        with np.load(osp.join(h36m_root, ann)) as data:
            assert set(data.files) == {'imgname', 'center', 'scale', 'part', 'S'}
            n = len(data['imgname'])
            assert data['part'].shape == (n, 17, 3) and data['S'].shape == (n, 17, 4)
            assert data['center'].shape == (n, 2) and data['scale'].shape == (n,)
            assert np.all(data['part'][..., 2] == 1) and np.all(data['S'][..., 3] == 1)
            matches = [NAME.match(str(name)) for name in data['imgname']]
            assert all(matches)
            subjects[ann] = {m.group(1) for m in matches}
            assert subjects[ann] == expected
            assert {m.group(2) for m in matches} == ACTIONS
            # S is camera-frame metres: people 4-7 m in front, about 0.5-0.8 m pelvis-to-head.
            depth = data['S'][:, 0, 2]
            assert 3.0 < depth.min() and depth.max() < 8.0
            head = np.linalg.norm(data['S'][:, 10, :3] - data['S'][:, 0, :3], axis=-1)
            assert 0.3 < np.median(head) < 0.9
            part = data['part'][..., :2]
            assert 0 < part.min() and part.max() < 1000
            assert np.all(data['scale'] > 0.5) and np.all(np.abs(data['center'] - 500) < 300)
        assert np.load(osp.join(h36m_root, det)).shape == (n, 17, 3)
    with open(osp.join(h36m_root, CAMS), 'rb') as f:
        cams = pickle.load(f)
    assert set(cams) == {(f'S{s}', c) for s in range(1, 12)
                         for c in ('54138969', '55011271', '58860488', '60457274')}
    for cam in cams.values():
        assert cam['R'].shape == (3, 3) and np.allclose(cam['R'] @ cam['R'].T, np.eye(3))
        assert np.isclose(np.linalg.det(cam['R']), 1.0)
        assert cam['T'].shape == (3, 1) and 3.0 < np.linalg.norm(cam['T']) < 8.0  # metres
        assert cam['c'].shape == (2, 1) and cam['f'].shape == (2, 1)
        assert cam['k'].shape == (3, 1) and cam['p'].shape == (2, 1)
        assert cam['w'] == 1000 and cam['h'] in (1000, 1002)


def test_fixture_follows_mmpose_camera_conventions(h36m_root):
    """MMPose's SimpleCamera maps S to part, and all 4 views of a frame meet in one world."""
    with open(osp.join(h36m_root, CAMS), 'rb') as f:
        cams = pickle.load(f)
    with np.load(osp.join(h36m_root, TRAIN)) as data:
        names = [str(n) for n in data['imgname']]
        part, s3d = data['part'], data['S']
    worlds = []
    for cam_id in ('54138969', '55011271', '58860488', '60457274'):
        rows = [i for i, n in enumerate(names) if f'S6_Walking_1.{cam_id}_' in n]
        cam = SimpleCamera(cams[('S6', cam_id)])
        pix = cam.camera_to_pixel(s3d[rows, :, :3].astype(np.float64))[..., :2]
        assert np.abs(pix - part[rows, :, :2]).max() < 0.05  # float32 parameters
        worlds.append(cam.camera_to_world(s3d[rows, :, :3].astype(np.float64)))
    for world in worlds[1:]:
        assert np.abs(world - worlds[0]).max() < 1e-3
    assert np.ptp(worlds[0][:, :, 2]) > 1.0  # Z-up world: the person spans > 1 m in height


def test_fixture_is_deterministic_and_atomic(h36m_root, tmp_path):
    tool = _tool()
    again = tmp_path / 'again'
    tool.write_fixture(str(again))
    for rel in tool.FILES:
        with open(osp.join(h36m_root, rel), 'rb') as a, open(again / rel, 'rb') as b:
            assert a.read() == b.read(), rel
    (again / 'my_notes.txt').write_text('user file')  # added by a user: must survive
    tool.write_fixture(str(again))  # only the fixture's own files are replaced
    assert (again / 'my_notes.txt').read_text() == 'user file'
    assert sorted(os.listdir(tmp_path)) == ['again']  # no temporary folders left
    foreign = tmp_path / 'real'
    foreign.mkdir()
    (foreign / 'images').mkdir()
    with pytest.raises(FileExistsError, match='--force'):
        tool.write_fixture(str(foreign))
    tool.write_fixture(str(foreign), force=True)
    assert (foreign / 'images').is_dir() and (foreign / TRAIN).is_file()


# --------------------------------------------------------------------------- vs MMPose
CASES = {
    'train-gt': (TRAIN, {}),
    'test-gt': (TEST, {}),
    'train-det': (TRAIN, dict(keypoint_2d_src='detection', keypoint_2d_det_file=DET_TRAIN)),
    'test-seq3-step2-middle': (TEST, dict(seq_len=3, seq_step=2, causal=False)),
    'test-seq4-pad-causal': (TEST, dict(seq_len=4, seq_step=2, pad_video_seq=True)),
    'test-seq5-pad-middle': (TEST, dict(seq_len=5, pad_video_seq=True, causal=False)),
    'train-subset': (TRAIN, dict(subset_frac=0.3)),
}


@pytest.mark.parametrize('case', list(CASES))
def test_arrays_equal_mmpose_human36m(h36m_root, case):
    ann, kw = CASES[case]
    np.random.seed(7)  # MMPose draws its subset from the global RNG
    ref = _mmpose(h36m_root, ann, camera_param_file=CAMS, **kw)
    ours = _ours(h36m_root, ann, camera_param_file=CAMS, test_mode=True, subset_seed=7, **kw)
    infos = [ref.get_data_info(i) for i in range(len(ref))]
    assert len(ours) == len(infos) > 0
    seq_len = kw.get('seq_len', 1)
    target = -1 if kw.get('causal', True) else seq_len // 2
    np.testing.assert_array_equal(ours.window_frames(),
                                  np.stack([np.asarray(x['img_ids']) for x in infos]))
    np.testing.assert_array_equal(ours.arrays['keypoints_2d'],
                                  np.stack([x['keypoints'][target] for x in infos]))
    lifting = np.stack([x['lifting_target'][0] for x in infos])
    np.testing.assert_allclose(ours.arrays['keypoints_3d'], lifting - lifting[:, :1], atol=1e-6)
    assert ours.arrays['img_paths'].tolist() == [x['target_img_path'][0] for x in infos]
    if kw.get('keypoint_2d_src') == 'detection':
        np.testing.assert_array_equal(ours.arrays['keypoint_scores'],
                                      np.stack([x['keypoints_visible'][target] for x in infos]))
    # MMPose also hands camera parameters to each sample: ours has them for every video.
    subject, _, camera = ours.row_keys([0])[0]
    np.testing.assert_array_equal(ours.camera_param[(subject, camera)]['R'],
                                  infos[0]['camera_param']['R'])


def test_invalid_windows_dropped_like_mmpose(h36m_root, tmp_path):
    """MMPose drops windows whose 2D is all <= 0; so do we, for every window it touches."""
    src = osp.join(h36m_root, TEST)
    with np.load(src) as data:
        n = len(data['imgname'])

    def zero_some(part):
        part = part.copy()
        part[[3, 4, 50, 51, 52], :, :2] = -1.0
        return part

    path = _small_npz(src, tmp_path / 'holes.npz', rows=n, part=zero_some)
    for kw in (dict(), dict(seq_len=3)):
        ref = _mmpose(h36m_root, path, **kw)
        ours = _ours(h36m_root, path, test_mode=True, **kw)
        assert len(ours) == len(ref) < n
        np.testing.assert_array_equal(ours.window_frames(),
                                      np.stack([ref.get_data_info(i)['img_ids']
                                                for i in range(len(ref))]))


# --------------------------------------------------------------------------- our arrays
def test_subject_split(h36m_root, train_set):
    assert {k[0] for k in train_set.video_keys} == {'S1', 'S5', 'S6', 'S7', 'S8'}
    test_set = _ours(h36m_root, TEST, test_mode=True)
    assert {k[0] for k in test_set.row_keys()} == {'S9', 'S11'}
    assert not any(p.split('/')[0] in ('S1', 'S5', 'S6', 'S7', 'S8')
                   for p in test_set.arrays['img_paths'])
    only = _ours(h36m_root, TRAIN, subjects=['S1', 'S7'])
    keys = only.row_keys()
    assert {k[0] for k in keys} == {'S1', 'S7'}
    assert len(only) == sum(k[0] in ('S1', 'S7') for k in train_set.row_keys())


def test_training_batches_carry_no_3d(h36m_root, train_set):
    assert set(train_set.arrays) == {'keypoints_2d', 'next_index'}
    batch = unsup3d_collate(train_set.__getitems__([0, 10, 20]))
    assert set(batch) == {'inputs'} and set(batch['inputs']) == {'keypoints_2d'}
    assert batch['inputs']['keypoints_2d'].shape == (3, 17, 2)
    semi = _ours(h36m_root, TRAIN, with_3d=True, labelled_fraction=0.25)
    has_3d = semi.arrays['has_3d']
    assert abs(has_3d.mean() - 0.25) < 0.01
    rows = np.arange(200)
    batch = unsup3d_collate(semi.__getitems__(rows))
    k3d = batch['inputs']['keypoints_3d'].numpy()
    assert np.all(k3d[~has_3d[rows]] == 0) and np.all(np.abs(k3d[has_3d[rows]]).sum((1, 2)) > 0)


def test_labelled_rows_from_one_subject(h36m_root, train_set):
    semi = _ours(h36m_root, TRAIN, with_3d=True, labelled_fraction=0.1,
                 labelled_subjects=['S1'])
    has_3d = semi.arrays['has_3d']
    subject = np.array([k[0] for k in semi.row_keys()])
    assert not has_3d[subject != 'S1'].any()
    assert has_3d[subject == 'S1'].sum() == round(0.1 * (subject == 'S1').sum())
    batch = unsup3d_collate(semi.__getitems__(np.flatnonzero(subject != 'S1')[:50]))
    assert not batch['inputs']['has_3d'].any() and not batch['inputs']['keypoints_3d'].any()
    with pytest.raises(ValueError, match='labelled_subjects'):
        _ours(h36m_root, TRAIN, with_3d=True, labelled_fraction=0.1, labelled_subjects=['S9'])


def test_detection_source_differs_from_gt(h36m_root, train_set):
    det = _ours(h36m_root, TRAIN, keypoint_2d_src='detection', keypoint_2d_det_file=DET_TRAIN)
    err = np.linalg.norm(det.arrays['keypoints_2d'] - train_set.arrays['keypoints_2d'], axis=-1)
    assert 0.5 < np.median(err) < 10.0 and err.max() > 20.0  # jitter plus a few outliers
    scores = det.arrays['keypoint_scores']
    assert scores.shape == (len(det), 17) and 0 < scores.min() and scores.max() <= 1
    assert np.corrcoef(scores.ravel(), err.ravel())[0, 1] < -0.3  # bad joints score low
    batch = unsup3d_collate(det.__getitems__([1, 2]))
    assert set(batch['inputs']) == {'keypoints_2d', 'keypoint_scores'}


@pytest.mark.parametrize('next_step', [1, 3])
def test_next_index_is_next_frame_of_same_video(h36m_root, next_step):
    ds = _ours(h36m_root, TRAIN, test_mode=True, next_step=next_step, with_next=True)
    parsed = [NAME.match(str(p)).groups() for p in ds.arrays['img_paths']]
    video = [(s, a, c) for s, a, c, _ in parsed]
    frame = np.array([int(f) for *_, f in parsed])
    last = defaultdict(int)
    for v, f in zip(video, frame):
        last[v] = max(last[v], f)
    nxt = ds.arrays['next_index']
    for r in range(len(ds)):
        if nxt[r] >= 0:
            assert video[nxt[r]] == video[r] and frame[nxt[r]] == frame[r] + next_step
        else:
            assert frame[r] + next_step > last[video[r]]
    assert (nxt >= 0).mean() > 0.5
    rows = np.arange(0, len(ds), 37)
    batch = ds.__getitems__(rows)['inputs']
    has = nxt[rows] >= 0
    np.testing.assert_array_equal(batch['has_next'].numpy(), has)
    np.testing.assert_array_equal(batch['keypoints_2d_next'].numpy()[has],
                                  ds.arrays['keypoints_2d'][nxt[rows][has]])


def test_registry_pickle_and_indices(h36m_root):
    ds = DATASETS.build(dict(type='H36MLiftingDataset', ann_file=TEST, data_root=h36m_root,
                             test_mode=True, indices=100))
    assert len(ds) == 100
    clone = pickle.loads(pickle.dumps(ds))  # spawn workers and deep copies need this
    np.testing.assert_array_equal(clone.arrays['keypoints_2d'], ds.arrays['keypoints_2d'])
    assert clone.__getitems__([0, 1])['data_samples'][1].target_img_path[0] == \
        ds.arrays['img_paths'][1]


def test_clear_errors(h36m_root, tmp_path):
    src = osp.join(h36m_root, TEST)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        _ours(h36m_root, 'annotation_body3d/fps50/missing.npz')
    with pytest.raises(FileNotFoundError, match='2D detection file'):
        _ours(h36m_root, TEST, keypoint_2d_src='detection', keypoint_2d_det_file='nope.npy')
    with pytest.raises(ValueError, match='keypoint_2d_det_file'):
        _ours(h36m_root, TEST, keypoint_2d_src='detection')
    with pytest.raises(ValueError, match='keypoint_2d_src'):
        _ours(h36m_root, TEST, keypoint_2d_src='pipeline')
    with pytest.raises(KeyError, match="'S'"):
        _ours(h36m_root, _small_npz(src, tmp_path / 'no_s.npz', S=None), test_mode=True)
    with pytest.raises(KeyError, match='imgname'):
        _ours(h36m_root, _small_npz(src, tmp_path / 'no_names.npz', imgname=None))
    with pytest.raises(ValueError, match=r'\(40, 17, 3\)'):
        _ours(h36m_root, _small_npz(src, tmp_path / 'j16.npz', part=lambda p: p[:, :16]))
    with pytest.raises(ValueError, match='NaN'):
        _ours(h36m_root, _small_npz(src, tmp_path / 'nan.npz',
                                    S=lambda s: np.where(np.arange(40)[:, None, None] == 5,
                                                         np.nan, s)), test_mode=True)
    with pytest.raises(ValueError, match='NaN'):
        _ours(h36m_root, _small_npz(src, tmp_path / 'nan2d.npz',
                                    part=lambda p: np.where(p > 600, np.nan, p)))
    with pytest.raises(ValueError, match='not in Human3.6M'):
        _ours(h36m_root, _small_npz(src, tmp_path / 'names.npz',
                                    imgname=lambda n: np.array(['frame.jpg'] * len(n))))
    det = tmp_path / 'det.npy'
    np.save(det, np.zeros((39, 17, 3), np.float32))
    with pytest.raises(ValueError, match=r'must be \(40, 17, 3\)'):
        _ours(h36m_root, _small_npz(src, tmp_path / 'ok.npz'), keypoint_2d_src='detection',
              keypoint_2d_det_file=str(det))
    cams = tmp_path / 'cams.pkl'
    with open(cams, 'wb') as f:
        pickle.dump({}, f)
    with pytest.raises(KeyError, match='no parameters'):
        _ours(h36m_root, TEST, camera_param_file=str(cams))



def test_no_samples_errors_name_the_selection_and_the_file(h36m_root):
    all_actions = str(sorted(ACTIONS))
    # The test split's subject filter on a file of other subjects (a data root without S9/S11).
    with pytest.raises(ValueError) as excinfo:
        _ours(h36m_root, TRAIN, subjects=['S9', 'S11'], test_mode=True)
    assert str(excinfo.value) == (
        f'H36MLiftingDataset: no samples in {osp.join(h36m_root, TRAIN)} after the subject '
        "filter: subjects=['S9', 'S11'] keeps none of its 7140 sample(s); pass subjects=None "
        '(dataset.subjects) or an annotation file of those subjects. The file holds subjects '
        f"['S1', 'S5', 'S6', 'S7', 'S8'] and actions {all_actions}")
    # With subset_frac, the subjects of the kept slice are named too.
    with pytest.raises(ValueError, match=r"subjects=\['S9'\] keeps none of its 100 sample\(s\) "
                                         r"\(subset_frac=0\.05 kept windows of subjects "
                                         r"\['S11'\] only\)"):
        _ours(h36m_root, TEST, subjects=['S9'], subset_frac=0.05)
    with pytest.raises(ValueError, match=r'after the indices selection: indices=\[\] selects '
                                         r"none of its 2008 sample\(s\)\. The file holds "
                                         r"subjects \['S9', 'S11'\]"):
        _ours(h36m_root, TEST, indices=[])
    with pytest.raises(ValueError, match=r'before any selection: no window of seq_len=100000, '
                                         r'seq_step=1 fits in any video'):
        _ours(h36m_root, TEST, seq_len=100000)

# --------------------------------------------------------------------------- end to end
def test_unsup3d_h36m_config_trains_and_tests(h36m_root, train_set, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'unsup3d_h36m.py'))
    assert cfg.data_root == 'data/h36m/'
    assert cfg.train_dataloader.batch_size == 64 and cfg.model.lifter.width == 1024
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:12]}'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = h36m_root
    cfg.model.lifter.width = cfg.model.discriminator.width = 32
    cfg.model.lifter.num_blocks = cfg.model.discriminator.num_blocks = 1
    # The documented smoke override, on a few iterations.
    cfg.merge_from_dict({'train_cfg.max_epochs': 1, 'train_dataloader.dataset.subset_frac': 0.03})
    runner = Runner.from_cfg(cfg)
    # The chirality prior is on in the Human3.6M configs too, and trained with the rest.
    assert 'ChiralityLoss' in [type(loss).__name__ for loss in runner.model.cycle_losses]
    runner.train()
    chirality = runner.message_hub.get_scalar('train/loss_chirality').data[0]  # (values, counts)
    assert len(chirality) == runner.iter and all(math.isfinite(v) and v >= 0 for v in chirality)
    num_train = len(runner.train_dataloader.dataset)
    assert 0 < num_train < 0.05 * len(train_set)
    assert runner.iter == -(-num_train // 64)  # one epoch of a few iterations
    metrics = runner.test()
    for mode in ('N-MPJPE', 'P-MPJPE', 'MPJPE'):
        assert 0 < metrics[mode] < 2.0  # metres
        assert {k[len(mode) + 1:] for k in metrics if k.startswith(mode + '_')} == ACTIONS
    assert metrics['P-MPJPE'] <= metrics['N-MPJPE'] + 1e-6
    assert 0.0 <= metrics['chirality_rate'] <= 1.0  # the label-free mirror diagnostic
