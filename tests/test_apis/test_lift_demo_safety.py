"""``demo/lift_demo.py`` never deletes what it did not write, and rejects bad input clearly."""
import importlib.util
import json
import os
import os.path as osp
import stat

import numpy as np
import pytest

from mmunsup3d.utils.output_dir import MARKER_NAME, OutputDir, OutputDirError, current_umask

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'demo', 'lift_demo.py')


@pytest.fixture(scope='module')
def demo():
    spec = importlib.util.spec_from_file_location('lift_demo_safety', DEMO)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def poses():
    from mmunsup3d.datasets import MocapProjectionDataset
    return MocapProjectionDataset(split='test', clips=['walk']).arrays['keypoints_2d'][:2]


def _npz(path, poses):
    np.savez(path, keypoints=poses)
    return str(path)


def _snapshot(folder):
    """{relative path: bytes} of every file below ``folder``."""
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = osp.join(root, n)
            with open(p, 'rb') as f:
                out[osp.relpath(p, folder)] = f.read()
    return out


def test_overwrite_refuses_unmarked_folder_and_keeps_user_files(demo, poses, tmp_path):
    inp = _npz(tmp_path / 'in.npz', poses)
    out = tmp_path / 'results'
    out.mkdir()
    (out / 'thesis.txt').write_text('years of work')
    (out / 'frame_000000.png').write_bytes(b'my own picture')  # same name as an output
    before = _snapshot(out)
    with pytest.raises(demo.InputError, match='not written by lift_demo'):
        demo.run(demo.parse_args([inp, '--out', str(out), '--overwrite']))
    assert _snapshot(out) == before
    assert demo.main([inp, '--out', str(out), '--overwrite']) == 2
    assert _snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ['in.npz', 'results']  # no staging left behind


def test_overwrite_replaces_only_own_files(demo, poses, tmp_path):
    inp = _npz(tmp_path / 'in.npz', poses)
    out = tmp_path / 'results'
    assert demo.main([inp, '--out', str(out)]) == 0
    manifest = json.loads((out / MARKER_NAME).read_text())
    assert manifest == dict(tool='lift_demo', files=['frame_000000.png', 'frame_000001.png',
                                                      'keypoints_3d.json'])
    (out / 'notes.txt').write_text('mine')
    (out / 'sub').mkdir()
    (out / 'sub' / 'keep.bin').write_bytes(b'\x00\x01')
    one = _npz(tmp_path / 'one.npz', poses[:1])
    with pytest.warns(UserWarning, match='kept 2 file'):
        assert demo.main([one, '--out', str(out), '--overwrite']) == 0
    assert sorted(os.listdir(out)) == [MARKER_NAME, 'frame_000000.png', 'keypoints_3d.json',
                                       'notes.txt', 'sub']
    assert (out / 'notes.txt').read_text() == 'mine'
    assert (out / 'sub' / 'keep.bin').read_bytes() == b'\x00\x01'
    assert len(json.loads((out / 'keypoints_3d.json').read_text())['frames']) == 1
    assert sorted(os.listdir(tmp_path)) == ['in.npz', 'one.npz', 'results']


@pytest.mark.parametrize('where', ['cwd', 'parent_of_cwd', 'home', 'root', 'holds_input'])
def test_protected_destinations_are_refused(demo, poses, tmp_path, monkeypatch, where):
    work = tmp_path / 'work'
    work.mkdir()
    inp = _npz(work / 'in.npz', poses)
    (tmp_path / 'home').mkdir()
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.chdir(work)
    out = {'cwd': '.', 'parent_of_cwd': str(tmp_path), 'home': '~', 'root': '/',
           'holds_input': str(work)}[where]
    before = _snapshot(tmp_path)
    with pytest.raises(demo.InputError, match='Refusing to write into'):
        demo.run(demo.parse_args([inp, '--out', out, '--overwrite']))
    assert _snapshot(tmp_path) == before
    assert sorted(os.listdir(work)) == ['in.npz']


def test_out_under_a_file_or_unwritable(demo, poses, tmp_path):
    inp = _npz(tmp_path / 'in.npz', poses)
    (tmp_path / 'afile').write_text('x')
    with pytest.raises(demo.InputError, match='Cannot create the output folder'):
        demo.run(demo.parse_args([inp, '--out', str(tmp_path / 'afile' / 'out')]))
    with pytest.raises(demo.InputError, match='exists and is not a folder'):
        demo.run(demo.parse_args([inp, '--out', str(tmp_path / 'afile')]))
    # /proc refuses new folders even for root, where permission bits would not.
    with pytest.raises(demo.InputError, match='Cannot create the output folder'):
        demo.run(demo.parse_args([inp, '--out', '/proc/mmunsup3d_test/out']))
    assert (tmp_path / 'afile').read_text() == 'x'


def test_output_follows_umask(demo, poses, tmp_path):
    inp = _npz(tmp_path / 'in.npz', poses)
    old = os.umask(0o022)
    try:
        assert demo.main([inp, '--out', str(tmp_path / 'o')]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'o').st_mode) == 0o755


@pytest.mark.parametrize('content, match', [
    ([dict(frame_id='zero', instances=[])], '"frame_id" must be an integer'),
    ([dict(frame_id=1.5, instances=[])], '"frame_id" must be an integer'),
    ([dict(frame_id=0, instances=[]), dict(frame_id=1)], 'entry 1: frame has no "instances"'),
    ([dict(frame_id=0)], 'entry 0: frame has no "instances"'),
    ([dict(frame_id=0, instances=[]), [1, 2]], 'entry 1: expected a frame'),
    (dict(keypoints=[[[True, False]] * 17]), 'must hold numbers'),
    (dict(keypoints=[[['1', '2']] * 17]), 'must hold numbers'),
])
def test_malformed_predictions_json(demo, tmp_path, content, match):
    path = tmp_path / 'pred.json'
    path.write_text(json.dumps(content))
    with pytest.raises(demo.InputError, match=match):
        demo.run(demo.parse_args([str(path), '--out', str(tmp_path / 'o')]))
    assert sorted(os.listdir(tmp_path)) == ['pred.json']


def test_object_npz_is_refused_without_unpickling(demo, tmp_path):
    marker = tmp_path / 'executed'

    class Payload:

        def __reduce__(self):
            return (open, (str(marker), 'w'))

    path = tmp_path / 'obj.npz'
    arr = np.empty(1, dtype=object)
    arr[0] = Payload()
    np.savez(path, keypoints=arr)
    with pytest.raises(demo.InputError, match='"keypoints" holds Python objects'):
        demo.run(demo.parse_args([str(path), '--out', str(tmp_path / 'o')]))
    assert not marker.exists() and not (tmp_path / 'o').exists()


def test_output_dir_unit(tmp_path):
    out = tmp_path / 'o'
    with OutputDir(str(out), tool='t') as stage:
        (tmp_path / 'x').write_text('not staged')
        with open(osp.join(stage.path, 'a.txt'), 'w') as f:
            f.write('1')
        os.makedirs(osp.join(stage.path, 'd'))
        with open(osp.join(stage.path, 'd', 'b.txt'), 'w') as f:
            f.write('2')
    assert _snapshot(out) == {'a.txt': b'1', osp.join('d', 'b.txt'): b'2',
                              MARKER_NAME: (out / MARKER_NAME).read_bytes()}
    # A failure inside the block changes nothing.
    with pytest.raises(RuntimeError):
        with OutputDir(str(out), tool='t', overwrite=True) as stage:
            with open(osp.join(stage.path, 'a.txt'), 'w') as f:
                f.write('new')
            raise RuntimeError('boom')
    assert (out / 'a.txt').read_text() == '1'
    assert sorted(os.listdir(tmp_path)) == ['o', 'x']
    # Another tool's folder is refused; an edited manifest cannot reach outside the folder.
    with pytest.raises(OutputDirError, match="outputs of 't'"):
        OutputDir(str(out), tool='other', overwrite=True)
    (tmp_path / 'outside.txt').write_text('precious')
    os.symlink(tmp_path, out / 'link')
    (out / MARKER_NAME).write_text(json.dumps(dict(
        tool='t', files=['a.txt', '../outside.txt', str(tmp_path / 'outside.txt'),
                         'link/outside.txt', 'd/b.txt'])))
    with OutputDir(str(out), tool='t', overwrite=True) as stage:
        with open(osp.join(stage.path, 'a.txt'), 'w') as f:
            f.write('3')
    assert (tmp_path / 'outside.txt').read_text() == 'precious'
    assert (out / 'a.txt').read_text() == '3' and not (out / 'd').exists()
    assert osp.islink(out / 'link')
    assert current_umask() == current_umask()  # reading it leaves it unchanged


# --------------------------------------------------------------------------- issue probes
PREDS = osp.join(REPO, 'demo', 'data', 'mmpose_preds_walk.json')


@pytest.fixture(scope='module')
def walk5():
    from mmunsup3d.datasets import MocapProjectionDataset
    return MocapProjectionDataset(split='test', clips=['walk']).arrays['keypoints_2d'][:5]


def _preds(num=6):
    """The demo's MMPose video predictions (COCO-17), frame ids 10, 20, ..."""
    with open(PREDS) as f:
        frames = json.load(f)[:num]
    for t, frame in enumerate(frames):
        frame['frame_id'] = 10 * (t + 1)
    return frames


def _json(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


def _no_lifter(monkeypatch):
    """Fail the test if the lifter is loaded (every check must come before it)."""
    import mmunsup3d.apis as apis
    monkeypatch.setattr(apis, 'init_lifter', lambda *a, **k: pytest.fail('lifter was loaded'))


def test_overwrite_refuses_new_names_held_by_user_files(demo, walk5, tmp_path, monkeypatch):
    out = tmp_path / 'results'
    assert demo.main([_npz(tmp_path / 'one.npz', walk5[:1]), '--out', str(out),
                      '--dpi', '40']) == 0
    (out / 'animation.gif').write_bytes(b'my animation')  # names the old marker never listed
    (out / 'frame_000003.png').write_bytes(b'my picture')
    before = _snapshot(out)
    _no_lifter(monkeypatch)
    inp = _npz(tmp_path / 'four.npz', walk5[:4])
    with pytest.raises(demo.InputError) as info:
        demo.run(demo.parse_args([inp, '--out', str(out), '--overwrite', '--video', 'gif']))
    msg = str(info.value)
    assert 'animation.gif (a file lift_demo did not write)' in msg
    assert 'frame_000003.png (a file lift_demo did not write)' in msg
    assert 'frame_000000.png' not in msg  # the earlier run's own file may be replaced
    assert _snapshot(out) == before


def test_overwrite_with_a_folder_at_an_output_name_changes_nothing(demo, walk5, tmp_path,
                                                                   monkeypatch):
    out = tmp_path / 'results'
    inp = _npz(tmp_path / 'two.npz', walk5[:2])
    assert demo.main([inp, '--out', str(out), '--dpi', '40']) == 0
    (out / 'frame_000001.png').unlink()
    (out / 'frame_000001.png').mkdir()
    (out / 'frame_000001.png' / 'mine.txt').write_text('user data')
    before = _snapshot(out)
    _no_lifter(monkeypatch)
    with pytest.raises(demo.InputError, match=r'frame_000001.png \(a folder\)'):
        demo.run(demo.parse_args([inp, '--out', str(out), '--overwrite']))
    assert _snapshot(out) == before


@pytest.mark.parametrize('overwrite', [False, True])
@pytest.mark.parametrize('when', ['model_load', 'render'])
def test_out_swapped_for_a_symlink_redirects_nothing(demo, poses, tmp_path, monkeypatch, when,
                                                     overwrite):
    inp = _npz(tmp_path / 'in.npz', poses)
    out = tmp_path / 'results'
    if overwrite:
        assert demo.main([inp, '--out', str(out), '--dpi', '40']) == 0
    victim = tmp_path / 'victim'
    victim.mkdir()
    (victim / 'keypoints_3d.json').write_text('precious')
    before = _snapshot(victim)

    def swap():
        if not osp.islink(out):
            if osp.isdir(out):
                os.rename(out, tmp_path / 'moved')
            os.symlink(victim, out)

    if when == 'model_load':
        import mmunsup3d.apis as apis
        real_init = apis.init_lifter
        monkeypatch.setattr(apis, 'init_lifter', lambda *a, **k: (swap(), real_init(*a, **k))[1])
    else:
        real_render = demo.Renderer.render
        monkeypatch.setattr(demo.Renderer, 'render',
                            lambda self, *a, **k: (swap(), real_render(self, *a, **k))[1])
    args = [inp, '--out', str(out), '--dpi', '40'] + (['--overwrite'] if overwrite else [])
    with pytest.raises(demo.InputError, match='replaced'):
        demo.run(demo.parse_args(args))
    assert _snapshot(victim) == before  # no output, no marker planted
    moved = tmp_path / 'moved'
    if moved.exists():  # the real folder: as it was (or empty, if this run had made it)
        assert not [n for n in os.listdir(moved) if n.startswith('.mmunsup3d-stage')]
    assert not [n for n in os.listdir(tmp_path) if n.startswith('.')]


def test_deeply_nested_json_is_a_clear_error(demo, poses, tmp_path, capsys):
    deep = tmp_path / 'deep.json'
    deep.write_text('[' * 100_000 + ']' * 100_000)
    dest = tmp_path / 'o'
    assert demo.main([str(deep), '--out', str(dest)]) == 2
    err = capsys.readouterr().err
    assert f'Cannot read {deep} as JSON: it is nested too deeply' in err
    assert 'Traceback' not in err and 'RecursionError' not in err
    inp = _npz(tmp_path / 'in.npz', poses)
    assert demo.main([inp, '--out', str(dest), '--gt', str(deep)]) == 2
    assert f'Cannot read --gt {deep} as JSON: it is nested too deeply' in capsys.readouterr().err
    marked = tmp_path / 'marked'
    marked.mkdir()
    (marked / MARKER_NAME).write_text('{"tool": "lift_demo", "files": ' + '[' * 100_000)
    assert demo.main([inp, '--out', str(marked), '--overwrite']) == 2
    err = capsys.readouterr().err
    assert str(marked / MARKER_NAME) in err and 'Traceback' not in err
    assert not dest.exists()


def test_out_of_range_scores_are_refused_naming_frame_and_instance(demo, poses, tmp_path):
    frames = _preds(3)
    frames[1]['instances'][0]['keypoint_scores'][6] = 2.0
    path = _json(tmp_path / 'pred.json', frames)
    with pytest.raises(demo.InputError, match=r'pred.json, frame 20, instance 0: scores must lie '
                       r'in \[0, 1\]; joint 6 \(right_shoulder\) has 2 .*--clip-scores'):
        demo.run(demo.parse_args([path, '--out', str(tmp_path / 'o')]))
    scores = np.ones((2, 17))
    scores[1, 3] = -0.5
    np.savez(tmp_path / 'sc.npz', keypoints=poses, scores=scores)
    with pytest.raises(demo.InputError, match=r'frame 1, instance 0: scores must lie in \[0, 1\]; '
                       r'joint 3 \(right_ankle\) has -0.5'):
        demo.run(demo.parse_args([str(tmp_path / 'sc.npz'), '--out', str(tmp_path / 'o')]))
    assert not (tmp_path / 'o').exists()
    # Clipping is a choice the user makes.
    assert demo.main([path, '--out', str(tmp_path / 'o'), '--clip-scores', '--dpi', '40']) == 0


def _collinear(kpts):
    k = np.asarray(kpts, float).copy()
    k[:, 1] = 0.5 * k[:, 0] + 7.0  # every joint on one line
    return k


def _one_point(kpts):
    k = np.asarray(kpts, float).copy()
    k[1:] = k[1]  # 16 joints at the left eye, the nose elsewhere
    return k


def test_degenerate_instance_is_skipped_naming_its_frame_id(demo, tmp_path, capsys):
    frames = _preds(3)
    for n, make in ((1, _collinear), (2, _one_point)):
        extra = dict(frames[n]['instances'][0])
        extra['keypoints'] = make(extra['keypoints']).tolist()
        frames[n]['instances'].append(extra)
    out = tmp_path / 'o'
    with pytest.warns(UserWarning) as record:
        assert demo.main([_json(tmp_path / 'pred.json', frames), '--out', str(out),
                          '--dpi', '40']) == 0
    messages = [str(w.message) for w in record]
    for fid in (20, 30):
        assert any(m.startswith(f'frame {fid}, instance 1: degenerate 2D pose') for m in messages)
    doc = json.loads((out / 'keypoints_3d.json').read_text())
    assert [[i is None for i in f['instances']] for f in doc['frames']] == \
        [[False], [False, True], [False, True]]
    assert doc['skipped'] == dict(low_confidence=0, degenerate=2)
    assert 'Lifted 3 instance(s) in 3 frame(s) (2 skipped: 0 low-confidence, 2 degenerate)' in \
        capsys.readouterr().out


def test_sigterm_leaves_nothing_behind(demo, poses, tmp_path, monkeypatch, capsys):
    import signal
    inp = _npz(tmp_path / 'in.npz', poses)
    real_render = demo.Renderer.render

    def terminated(self, *a, **k):
        rgb = real_render(self, *a, **k)
        os.kill(os.getpid(), signal.SIGTERM)
        return rgb

    monkeypatch.setattr(demo.Renderer, 'render', terminated)
    before = signal.getsignal(signal.SIGTERM)
    assert demo.main([inp, '--out', str(tmp_path / 'results'), '--dpi', '40']) == 143
    assert 'terminated (SIGTERM); nothing was written' in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ['in.npz']
    assert signal.getsignal(signal.SIGTERM) == before


KILL_MID_RENDER = '''
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location('lift_demo_killed', sys.argv[1])
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)
demo.Renderer.render = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
demo.main(sys.argv[2:])
'''


def test_sigkill_leftovers_are_removed_by_the_next_run(demo, poses, tmp_path):
    import subprocess
    import sys
    inp = _npz(tmp_path / 'in.npz', poses)
    out = tmp_path / 'results'
    assert demo.main([inp, '--out', str(out), '--dpi', '40']) == 0
    proc = subprocess.Popen([sys.executable, '-c', KILL_MID_RENDER, DEMO, inp, '--out',
                             str(out), '--overwrite'], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert proc.wait(timeout=300) == -9
    stages = [n for n in os.listdir(out) if n.startswith('.mmunsup3d-stage.lift_demo.')]
    assert len(stages) == 1 and stages[0].split('.')[-2] == str(proc.pid)
    (out / 'mine.txt').write_text('user')
    with pytest.warns(UserWarning, match=f'removed 1 leftover.*{stages[0]} \\(its process '
                      r'\d+ is gone\)'):
        assert demo.main([inp, '--out', str(out), '--overwrite', '--dpi', '40']) == 0
    assert sorted(os.listdir(out)) == [MARKER_NAME, 'frame_000000.png', 'frame_000001.png',
                                       'keypoints_3d.json', 'mine.txt']


def test_render_every_and_the_huge_render_warning(demo, walk5, tmp_path, monkeypatch):
    from PIL import Image
    monkeypatch.setattr(demo, 'RENDER_WARN_FRAMES', 2)
    inp = _npz(tmp_path / 'five.npz', walk5)
    out = tmp_path / 'o'
    with pytest.warns(UserWarning, match=r'3 frame pictures will be drawn \(5 input frames, '
                      r'--render-every 2\).*GiB.*--max-frames N or --render-every K'):
        assert demo.main([inp, '--out', str(out), '--render-every', '2', '--video', 'gif',
                          '--dpi', '40']) == 0
    assert sorted(os.listdir(out)) == [MARKER_NAME, 'animation.gif', 'frame_000000.png',
                                       'frame_000002.png', 'frame_000004.png',
                                       'keypoints_3d.json']
    with Image.open(out / 'animation.gif') as gif:
        assert gif.n_frames == 3
    doc = json.loads((out / 'keypoints_3d.json').read_text())
    assert len(doc['frames']) == 5 and doc['render_every'] == 2
    with pytest.raises(demo.InputError, match='--render-every must be >= 1, got 0'):
        demo.run(demo.parse_args([inp, '--out', str(tmp_path / 'o2'), '--render-every', '0']))


def test_wrong_joint_order_is_refused(demo, poses, tmp_path, monkeypatch):
    coco = np.array([f['instances'][0]['keypoints'] for f in _preds()])
    as_h36m = _npz(tmp_path / 'coco.npz', coco)
    _no_lifter(monkeypatch)
    with pytest.raises(demo.InputError, match=r'coco.npz: the keypoints do not look like '
                       r'Human3.6M-17.*--skip-format-check'):
        demo.run(demo.parse_args([as_h36m, '--out', str(tmp_path / 'o')]))
    as_coco = _json(tmp_path / 'h36m.json', [dict(frame_id=t, instances=[dict(
        keypoints=p.tolist(), keypoint_scores=[0.9] * 17)]) for t, p in enumerate(poses)])
    with pytest.raises(demo.InputError, match='do not look like COCO-17'):
        demo.run(demo.parse_args([as_coco, '--out', str(tmp_path / 'o')]))
    assert not (tmp_path / 'o').exists()
    monkeypatch.undo()
    assert demo.main([as_h36m, '--out', str(tmp_path / 'o'), '--skip-format-check',
                      '--dpi', '40']) == 0
