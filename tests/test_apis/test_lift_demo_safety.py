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
