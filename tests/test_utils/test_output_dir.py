"""``OutputDir``: no write or deletion outside ``out``, whatever is swapped in while it runs;
all-or-nothing commits; only its own leftovers are cleaned; markers read in linear time."""
import json
import os
import os.path as osp
import subprocess
import sys
import time

import pytest

from mmunsup3d.utils import output_dir as od
from mmunsup3d.utils.output_dir import MARKER_NAME, OutputDir, OutputDirError


def _snapshot(folder):
    """{relative path: bytes, '-> target' (symlink), '/' (folder) or 'special'} below it."""
    out = {}
    for root, dirs, names in os.walk(folder):
        for n in dirs + names:
            p = osp.join(root, n)
            rel = osp.relpath(p, folder)
            if osp.islink(p):
                out[rel] = '-> ' + os.readlink(p)
            elif osp.isdir(p):
                out[rel] = '/'
            elif not osp.isfile(p):
                out[rel] = 'special'  # a FIFO: reading it would block
            else:
                with open(p, 'rb') as f:
                    out[rel] = f.read()
    return out


def _write(target, files):
    for rel, text in files.items():
        with target.open(rel, 'w') as f:
            f.write(text)


def _run(out, files, overwrite=True, tool='t'):
    with OutputDir(str(out), tool=tool, overwrite=overwrite) as stage:
        _write(stage, files)
    return stage


@pytest.fixture
def victim(tmp_path):
    """A folder outside ``out`` that must never change."""
    v = tmp_path / 'victim'
    v.mkdir()
    (v / 'a.txt').write_text('precious a')
    (v / 'frame_000000.png').write_text('precious picture')
    return v


# --------------------------------------------------------------------------- symlink swaps
@pytest.mark.parametrize('existing', [False, True])
def test_out_swapped_for_a_symlink_before_the_block(tmp_path, victim, existing):
    out = tmp_path / 'out'
    if existing:
        _run(out, {'a.txt': 'old'}, overwrite=False)
    target = OutputDir(str(out), tool='t', overwrite=True)
    target.reserve(['a.txt'])
    # The dangerous moment: after the checks, while the tool loads its model.
    if existing:
        os.rename(out, tmp_path / 'moved')
    os.symlink(victim, out)
    before = _snapshot(victim)
    with pytest.raises(OutputDirError, match='replaced by a symbolic link'):
        with target as stage:
            _write(stage, {'a.txt': 'new'})
    assert _snapshot(victim) == before  # no file, no marker planted
    if existing:
        assert sorted(os.listdir(tmp_path / 'moved')) == [MARKER_NAME, 'a.txt']


@pytest.mark.parametrize('existing', [False, True])
def test_out_swapped_for_a_symlink_inside_the_block(tmp_path, victim, existing):
    out = tmp_path / 'out'
    if existing:
        _run(out, {'a.txt': 'old'}, overwrite=False)
    before = _snapshot(victim)
    with pytest.raises(OutputDirError, match='moved or replaced'):
        with OutputDir(str(out), tool='t', overwrite=True) as stage:
            _write(stage, {'a.txt': 'new'})
            os.rename(out, tmp_path / 'moved')  # swapped during the render
            os.symlink(victim, out)
            _write(stage, {'frame_000000.png': 'new picture'})
            with open(stage.fd_path('b.bin'), 'wb') as f:  # what OpenCV gets
                f.write(b'video')
    assert _snapshot(victim) == before
    moved = tmp_path / 'moved'
    assert sorted(os.listdir(moved)) == ([MARKER_NAME, 'a.txt'] if existing else [])
    if existing:
        assert (moved / 'a.txt').read_text() == 'old'


@pytest.mark.parametrize('swap_at', range(1, 7))
def test_stale_cleanup_never_follows_a_swapped_subfolder(tmp_path, monkeypatch, swap_at):
    """The old run's ``sub/`` is swapped for a symlink to outside at the k-th look at one of
    its files (planning, moving aside, ...): nothing outside changes."""
    out = tmp_path / 'out'
    _run(out, {'sub/a.txt': 'mine a', 'sub/b.txt': 'mine b', 'c.txt': 'c'}, overwrite=False)
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'a.txt').write_text('precious a')
    (outside / 'b.txt').write_text('precious b')
    before = _snapshot(outside)
    real = od._entry_type
    calls = []

    def racing(dir_fd, name):
        kind = real(dir_fd, name)
        if name in ('a.txt', 'b.txt'):
            calls.append(name)
            if len(calls) == swap_at and not osp.islink(out / 'sub'):
                os.rename(out / 'sub', tmp_path / 'sub_real')
                os.symlink(outside, out / 'sub')
        return kind

    monkeypatch.setattr(od, '_entry_type', racing)
    with pytest.warns(UserWarning, match='kept'):  # the symlink itself is kept
        _run(out, {'c.txt': 'new c'})
    assert _snapshot(outside) == before
    assert (out / 'c.txt').read_text() == 'new c'


# --------------------------------------------------------------------------- taken names
def test_new_names_taken_by_user_files_are_refused_before_anything(tmp_path):
    out = tmp_path / 'out'
    _run(out, {'keypoints_3d.json': '{}', 'frame_000000.png': 'p0'}, overwrite=False)
    (out / 'animation.gif').write_text('my gif')
    (out / 'frame_000003.png').write_text('my picture')
    before = _snapshot(out)
    target = OutputDir(str(out), tool='t', overwrite=True)
    names = ['keypoints_3d.json', 'animation.gif'] + [f'frame_{i:06d}.png' for i in range(4)]
    with pytest.raises(OutputDirError) as info:
        target.reserve(names)
    msg = str(info.value)
    assert 'animation.gif (a file t did not write)' in msg
    assert 'frame_000003.png (a file t did not write)' in msg
    assert 'frame_000000.png' not in msg and 'nothing was changed' in msg
    # The commit checks again: a user file created after reserve() is not replaced either.
    (out / 'animation.gif').unlink()
    target = OutputDir(str(out), tool='t', overwrite=True)
    target.reserve(['animation.gif'])
    with pytest.raises(OutputDirError, match=r'animation.gif \(a file t did not write\)'):
        with target as stage:
            _write(stage, {'animation.gif': 'new'})
            (out / 'animation.gif').write_text('my gif')
    assert _snapshot(out) == before


@pytest.mark.parametrize('kind', ['folder', 'symlink', 'fifo', 'symlinked_parent'])
def test_non_regular_target_is_refused_before_the_first_rename(tmp_path, victim, kind):
    out = tmp_path / 'out'
    _run(out, {'a.txt': 'old a', 'b.txt': 'old b', 'd/c.txt': 'old c'}, overwrite=False)
    name = {'folder': 'b.txt', 'symlink': 'b.txt', 'fifo': 'b.txt',
            'symlinked_parent': 'd/c.txt'}[kind]
    if kind == 'symlinked_parent':
        os.rename(out / 'd', tmp_path / 'd_moved')
        os.symlink(victim, out / 'd')
    else:
        (out / 'b.txt').unlink()
        if kind == 'folder':
            (out / 'b.txt').mkdir()
            (out / 'b.txt' / 'inside').write_text('user')
        elif kind == 'symlink':
            os.symlink(victim / 'a.txt', out / 'b.txt')
        else:
            os.mkfifo(out / 'b.txt')
    before, before_victim = _snapshot(out), _snapshot(victim)
    with pytest.raises(OutputDirError, match=f'{name} '):
        OutputDir(str(out), tool='t', overwrite=True).reserve([name])
    # And at commit time (the reserve step skipped): nothing changes either.
    with pytest.raises(OutputDirError, match='nothing was changed'):
        _run(out, {'a.txt': 'new a', 'b.txt': 'new b', 'd/c.txt': 'new c'})
    assert _snapshot(out) == before and _snapshot(victim) == before_victim


def test_a_failing_commit_is_rolled_back(tmp_path, monkeypatch):
    out = tmp_path / 'out'
    _run(out, {'a.txt': 'old a', 'b.txt': 'old b', 'sub/s.txt': 'stale'}, overwrite=False)
    (out / 'user.txt').write_text('user')
    before = _snapshot(out)
    real = od._place
    calls = []

    def failing(*args):
        calls.append(args)
        if len(calls) == 3:
            raise OSError(28, 'No space left on device')
        return real(*args)

    monkeypatch.setattr(od, '_place', failing)
    with pytest.raises(OutputDirError, match='everything was put back'):
        _run(out, {'a.txt': 'new a', 'b.txt': 'new b', 'new/n.txt': 'n', 'z.txt': 'z'})
    assert len(calls) == 3
    assert _snapshot(out) == before  # old files, old marker, stale file, user file
    monkeypatch.setattr(od, '_place', real)
    with pytest.warns(UserWarning, match='kept 1 file'):
        _run(out, {'a.txt': 'new a', 'b.txt': 'new b'})
    assert json.loads((out / MARKER_NAME).read_text())['files'] == ['a.txt', 'b.txt']
    assert sorted(os.listdir(out)) == [MARKER_NAME, 'a.txt', 'b.txt', 'user.txt']


def test_exception_inside_the_block_leaves_nothing(tmp_path):
    out = tmp_path / 'out'
    with pytest.raises(KeyboardInterrupt):
        with OutputDir(str(out), tool='t') as stage:
            _write(stage, {'a.txt': 'x'})
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []  # the folder it made is gone too
    _run(out, {'a.txt': 'old'}, overwrite=False)
    with pytest.raises(RuntimeError):
        with OutputDir(str(out), tool='t', overwrite=True) as stage:
            _write(stage, {'a.txt': 'new'})
            raise RuntimeError('boom')
    assert sorted(os.listdir(out)) == [MARKER_NAME, 'a.txt'] and (out / 'a.txt').read_text() == \
        'old'


def test_names_and_api(tmp_path):
    target = OutputDir(str(tmp_path / 'out'), tool='t')
    for bad in ('../x', '/abs', 'a/../b', '', MARKER_NAME, 'a//b', './a'):
        with pytest.raises(OutputDirError, match='Invalid output name'):
            target.reserve([bad])
    with pytest.raises(RuntimeError, match='only inside the with block'):
        target.open('a.txt')
    with pytest.raises(ValueError, match='tool must be'):
        OutputDir(str(tmp_path / 'o2'), tool='../t')
    with target as stage:
        assert osp.dirname(stage.path) == str(tmp_path / 'out')
        assert stage.fd_path('v.mp4').startswith('/proc/self/fd/')
        with stage.open('deep/er/f.bin') as f:
            f.write(b'1')
    assert (tmp_path / 'out' / 'deep' / 'er' / 'f.bin').read_bytes() == b'1'


# --------------------------------------------------------------------------- the marker
def test_deeply_nested_marker_is_a_clear_error(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / MARKER_NAME).write_text('[' * 100_000 + ']' * 100_000)
    with pytest.raises(OutputDirError, match=f'{out / MARKER_NAME}.*nested too deeply'):
        OutputDir(str(out), tool='t', overwrite=True)
    (out / MARKER_NAME).write_text('{"tool": "t", "files": ' + '[' * 100_000)
    with pytest.raises(OutputDirError, match=str(out / MARKER_NAME)):
        OutputDir(str(out), tool='t', overwrite=True)


def test_marker_entries_are_capped(tmp_path, monkeypatch):
    out = tmp_path / 'out'
    out.mkdir()
    monkeypatch.setattr(od, 'MAX_MARKER_ENTRIES', 1000)
    (out / MARKER_NAME).write_text(json.dumps(dict(tool='t', files=['f'] * 1001)))
    with pytest.raises(OutputDirError, match=f'{out / MARKER_NAME} lists 1001 files, more '
                       'than the 1000'):
        OutputDir(str(out), tool='t', overwrite=True)
    with pytest.raises(OutputDirError, match='more than the 1000 an output marker may list'):
        OutputDir(str(tmp_path / 'o2'), tool='t').reserve([f'f{i}' for i in range(1001)])


def test_large_marker_is_handled_in_linear_time(tmp_path):
    """A marker at the cap (1 000 000 entries: none on disk, some nested, some hostile) is read,
    checked and replaced in well under a minute; the old code needed a realpath per entry
    (about 140 us each: over two minutes here)."""
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'd7').mkdir()  # a present sub-folder: its entries are looked up one by one
    files = [f'frame_{i:07d}.png' for i in range(900_000)] + \
        [f'd{i % 100}/x{i}.png' for i in range(99_998)] + ['../../etc/passwd', '/etc/passwd']
    assert len(files) == od.MAX_MARKER_ENTRIES
    (out / MARKER_NAME).write_text(json.dumps(dict(tool='t', files=files)))
    start = time.perf_counter()
    target = OutputDir(str(out), tool='t', overwrite=True)
    target.reserve(files[:100_000])
    with target as stage:
        _write(stage, {'frame_0000000.png': 'x'})
    assert time.perf_counter() - start < 60
    assert json.loads((out / MARKER_NAME).read_text())['files'] == ['frame_0000000.png']


# --------------------------------------------------------------------------- leftovers
def _dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def _stage_name(pid, host=None, tool='t'):
    return f'{od.STAGE_PREFIX}{tool}.{host or od._host_tag()}.{pid}.0123abcd'


def test_leftovers_of_killed_runs_are_removed_and_nothing_else(tmp_path):
    out = tmp_path / 'out'
    _run(out, {'a.txt': 'a'}, overwrite=False)
    dead, old_live, live = _stage_name(_dead_pid()), _stage_name(os.getppid()), \
        _stage_name(1).replace('0123abcd', '0123abce')
    for name in (dead, old_live, live):
        (out / name).mkdir()
        (out / name / 'frame_000000.png').write_text('half written')
    two_days = time.time() - 2 * 24 * 3600
    os.utime(out / old_live, (two_days, two_days))
    (out / '.mmunsup3d-stage.notes').mkdir()           # the user's, not our pattern
    os.symlink(tmp_path, out / _stage_name(_dead_pid()).replace('0123abcd', 'ffffffff'))
    (out / (MARKER_NAME + '.tmp')).write_text('old version temp')
    os.utime(out / (MARKER_NAME + '.tmp'), (two_days, two_days))
    legacy_old, legacy_young = tmp_path / '.out.t-tmp-abcd1234', tmp_path / '.out.t-tmp-wxyz9876'
    for p in (legacy_old, legacy_young):
        p.mkdir()
        (p / 'a.txt').write_text('half')
    os.utime(legacy_old, (two_days, two_days))
    (tmp_path / '.out.t-tmp-notmine').mkdir()  # wrong length: not the old pattern
    with pytest.warns(UserWarning, match='removed 4 leftover'):
        stage = _run(out, {'a.txt': 'b'})
    why = dict(r.split(' ', 1) for r in stage.removed_leftovers)
    assert set(why) == {dead, old_live, MARKER_NAME + '.tmp', legacy_old.name}
    assert why[dead] == f'(its process {dead.split(".")[-2]} is gone)'
    assert why[old_live] == '(older than 24 h)' and why[legacy_old.name] == '(older than 24 h)'
    left = sorted(os.listdir(out))
    assert live in left and '.mmunsup3d-stage.notes' in left
    assert len([n for n in left if n.startswith(od.STAGE_PREFIX)]) == 3  # live, notes, link
    assert legacy_young.is_dir() and (tmp_path / '.out.t-tmp-notmine').is_dir()


def test_folder_holding_only_a_leftover_counts_as_empty(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / _stage_name(_dead_pid())).mkdir()
    stage = _run(out, {'a.txt': 'a'}, overwrite=False)  # no --overwrite needed
    assert len(stage.removed_leftovers) == 1
    assert sorted(os.listdir(out)) == [MARKER_NAME, 'a.txt']
