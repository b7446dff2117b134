"""Output folders that a tool may replace without ever deleting anything it did not write.

A tool writes its results into a private staging folder inside the destination and, once
everything is written, moves them into place. The destination gets a marker file listing the
files the tool wrote (a manifest). A later run with ``overwrite=True`` replaces only those files
and leaves every other file in the folder alone; a non-empty folder without the marker is
refused. ``/``, the home folder, the working directory (and any folder above it) and any folder
holding one of the tool's inputs are refused as destinations.

Guarantees:

* nothing the tool did not write is replaced or deleted: every output name is checked against
  the folder before anything is written (:meth:`OutputDir.reserve`) and again before the first
  file moves; a name held by a file the marker does not list, by a folder, a symlink or any
  other non-regular file is an error that names it, and nothing changes;
* all or nothing: the files move in only after all were written; a failure while they move
  puts back what had moved (as far as POSIX renames allow), and any exception inside the
  ``with`` block leaves ``out`` as it was;
* no redirection: the destination is opened once (``O_DIRECTORY | O_NOFOLLOW``) when the block
  starts and checked to be the folder the path checks approved; every later create, rename and
  unlink is relative to that descriptor (``dir_fd``) and never follows a symlink, so replacing
  ``out`` or one of its sub-folders by a symlink while the tool runs cannot send a write or a
  deletion anywhere else (the commit then refuses, as ``out`` no longer is that folder);
* leftovers of killed runs are removed by the next run: staging folders of this module (name
  ``.mmunsup3d-stage.<tool>.<host>.<pid>.<random>``, owned by the user) whose process is gone
  or that are older than :data:`STALE_AGE_S`, and the ``.{out}.{tool}-tmp-*`` staging folders
  and ``.mmunsup3d-output.json.tmp`` files of earlier versions older than that age.

Usage::

    target = OutputDir(out, tool='lift_demo', overwrite=args.overwrite, inputs=[args.input])
    target.reserve(['keypoints_3d.json', 'frame_000000.png'])  # refuses user files early
    with target as stage:
        with stage.open('keypoints_3d.json', 'w') as f:
            ...
    # on success the files are in `out`; on any exception nothing changed in `out`
"""
import errno
import hashlib
import io
import json
import os
import os.path as osp
import re
import secrets
import socket
import stat
import time
import warnings
from types import TracebackType
from typing import IO, Iterable, List, Optional, Sequence, Set, Tuple, Type

__all__ = ['OutputDir', 'OutputDirError', 'MARKER_NAME', 'MAX_MARKER_ENTRIES', 'STALE_AGE_S',
           'read_manifest', 'current_umask']

MARKER_NAME = '.mmunsup3d-output.json'
#: Most files a marker may list; reading and checking stay linear in it. A marker beyond it
#: (or beyond :data:`MAX_MARKER_BYTES`) was not written by this module and is refused.
MAX_MARKER_ENTRIES = 1_000_000
MAX_MARKER_BYTES = 256 * 1024 * 1024
#: Age after which a leftover staging folder counts as abandoned even if its process may live.
STALE_AGE_S = 24 * 3600

STAGE_PREFIX = '.mmunsup3d-stage.'
_STAGE_RE = re.compile(r'^\.mmunsup3d-stage\.(?P<tool>[A-Za-z0-9_-]+)\.(?P<host>[0-9a-f]{8})\.'
                       r'(?P<pid>[0-9]{1,10})\.[0-9a-f]{8}$')
_TOOL_RE = re.compile(r'^[A-Za-z0-9_-]+$')
_LEGACY_MARKER_TMP = MARKER_NAME + '.tmp'
_REPLACED = '.replaced'  # in the staging folder: the old files while the commit runs
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)
_ACTIVE_STAGES: Set[str] = set()  # staging folders of this process that are in use


class OutputDirError(ValueError):
    """The destination folder cannot be used (the message says why; nothing was changed)."""


def current_umask() -> int:
    """The process umask (``os.umask`` can only be read by setting it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies below it (both real, absolute paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


# --------------------------------------------------------------------------- fd helpers
def _open_dir(name: str, dir_fd: Optional[int] = None) -> int:
    """Open folder ``name`` (relative to ``dir_fd``) without following a symlink at its end."""
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _valid_rel(rel: object) -> bool:
    """A relative path of plain components (no ``..``, ``.``, empty parts, NUL or ``/`` start).

    The marker is a file on disk and could have been edited: an entry that is not such a path
    is never touched.
    """
    return isinstance(rel, str) and 0 < len(rel) < 4096 and '\0' not in rel and \
        not rel.startswith('/') and all(p not in ('', '.', '..') for p in rel.split('/'))


class _Parent:
    """The folder holding ``rel`` inside ``root_fd``, opened component by component.

    Every component is opened with ``O_NOFOLLOW``: a symlinked (or missing) sub-folder gives
    ``fd = None`` (``why`` says which component), never a descriptor elsewhere. With
    ``create`` missing folders are made (``0o777`` less the umask) and recorded in ``created``.
    Use as a context manager; the descriptor is closed on exit.
    """

    def __init__(self, root_fd: int, rel: str, create: bool = False,
                 created: Optional[List[str]] = None) -> None:
        parts = rel.split('/')
        self.leaf, self.fd, self.why = parts[-1], None, ''
        self._own = False
        fd, done = root_fd, []
        for part in parts[:-1]:
            done.append(part)
            try:
                nxt = self._step(fd, part, create, created, '/'.join(done))
            except OSError as e:
                self._close(fd, fd is not root_fd)
                self.why = _describe_error(e, '/'.join(done))
                return
            self._close(fd, fd is not root_fd)
            fd = nxt
        self.fd, self._own = fd, fd is not root_fd

    @staticmethod
    def _step(fd: int, part: str, create: bool, created: Optional[List[str]], path: str) -> int:
        try:
            return _open_dir(part, fd)
        except FileNotFoundError:
            if not create:
                raise
        os.mkdir(part, 0o777, dir_fd=fd)
        if created is not None:
            created.append(path)
        return _open_dir(part, fd)

    @staticmethod
    def _close(fd: int, own: bool) -> None:
        if own:
            os.close(fd)

    def __enter__(self) -> '_Parent':
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            self._close(self.fd, self._own)
            self.fd = None


def _describe_error(e: OSError, path: str) -> str:
    if e.errno in (errno.ELOOP, errno.ENOTDIR):
        return f'{path} is a symbolic link or not a folder'
    if e.errno == errno.ENOENT:
        return f'{path} does not exist'
    return f'{path}: {e.strerror or e}'


def _lookup(root_fd: int, rel: str, present: Set[str]) -> Tuple[Optional[str], str]:
    """What ``rel`` below ``root_fd`` is, never through a symlink: ``(type, why)``.

    ``type`` is as for :func:`_entry_type` (``None``: absent, or unreachable as ``why``
    says). ``present`` (the names in ``root_fd``, read once) answers most entries of a long
    marker without a system call: an entry whose first component is not there is absent.
    """
    if rel.split('/', 1)[0] not in present:
        return None, ''
    if '/' not in rel:
        return _entry_type(root_fd, rel), ''
    with _Parent(root_fd, rel) as p:
        if p.fd is None:
            return None, '' if p.why.endswith('does not exist') else p.why
        return _entry_type(p.fd, p.leaf), ''


def _entry_type(dir_fd: int, name: str) -> Optional[str]:
    """``'file'``, ``'folder'``, ``'symbolic link'``, ``'special file'`` or ``None`` (absent)."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return 'file'
    if stat.S_ISDIR(mode):
        return 'folder'
    return 'symbolic link' if stat.S_ISLNK(mode) else 'special file'


def _rmtree_at(dir_fd: int, name: str) -> None:
    """Delete folder ``name`` of ``dir_fd`` and its contents, never following a symlink."""
    try:
        fd = _open_dir(name, dir_fd)
    except FileNotFoundError:
        return
    try:
        with os.scandir(fd) as it:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for entry, is_dir in entries:
            if is_dir:
                _rmtree_at(fd, entry)
            else:
                os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def _walk_files(fd: int, prefix: str = '') -> List[Tuple[str, str]]:
    """``(relative path, type)`` of every non-folder entry below ``fd`` (symlinks not followed)."""
    out = []
    with os.scandir(fd) as it:
        entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
    for name, is_dir in sorted(entries):
        rel = prefix + name
        if not is_dir:
            out.append((rel, _entry_type(fd, name) or 'file'))
            continue
        sub = _open_dir(name, fd)
        try:
            out.extend(_walk_files(sub, rel + '/'))
        finally:
            os.close(sub)
    return out


# --------------------------------------------------------------------------- marker
def _parse_marker(raw: bytes, path: str) -> dict:
    """Validate a marker's bytes in one linear pass (see :data:`MAX_MARKER_ENTRIES`)."""
    try:
        doc = json.loads(raw.decode('utf-8'))
    except RecursionError as e:
        raise OutputDirError(f'{path} is not an output marker written by mmunsup3d: its JSON '
                             'is nested too deeply') from e
    except (UnicodeDecodeError, ValueError) as e:
        raise OutputDirError(f'{path} is not a readable output marker: {e}') from e
    files = doc.get('files') if isinstance(doc, dict) else None
    if not isinstance(files, list) or not isinstance(doc.get('tool'), str):
        raise OutputDirError(f'{path} is not an output marker written by mmunsup3d')
    if len(files) > MAX_MARKER_ENTRIES:
        raise OutputDirError(f'{path} lists {len(files)} files, more than the '
                             f'{MAX_MARKER_ENTRIES} an output marker may hold; it was not '
                             'written by mmunsup3d: check the folder and remove the marker '
                             'yourself')
    if not all(isinstance(f, str) for f in files):
        raise OutputDirError(f'{path} is not an output marker written by mmunsup3d')
    return doc


def _read_marker_at(fd: int, folder: str) -> Optional[dict]:
    """The marker of the folder open as ``fd``, or ``None`` if it has none (or a symlink)."""
    path = osp.join(folder, MARKER_NAME)
    try:
        mfd = os.open(MARKER_NAME, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0),
                      dir_fd=fd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None  # a symlink is not a marker this module wrote
        raise OutputDirError(f'{path} is not a readable output marker: {e}') from e
    with io.open(mfd, 'rb') as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > MAX_MARKER_BYTES:
            raise OutputDirError(f'{path} is {st.st_size} bytes, more than an output marker '
                                 f'may hold ({MAX_MARKER_BYTES}); it was not written by '
                                 'mmunsup3d')
        raw = f.read(MAX_MARKER_BYTES + 1)
    return _parse_marker(raw, path)


def read_manifest(folder: str) -> Optional[dict]:
    """The marker of ``folder`` (``{"tool", "files"}``), or ``None`` if it has none.

    Raises:
        OutputDirError: the marker exists but is not a manifest this module wrote (unreadable,
            not JSON, nested too deeply, more than :data:`MAX_MARKER_ENTRIES` entries).
    """
    try:
        fd = _open_dir(folder)
    except OSError:
        return None
    try:
        return _read_marker_at(fd, folder)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- leftovers
def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process (or no such pid number): treat as alive
    return True


def _stale_reason(dir_fd: int, name: str, legacy: bool) -> Optional[str]:
    """Why leftover ``name`` (one of this module's own names) may go, or None to keep it."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if st.st_uid != os.getuid() or stat.S_ISLNK(st.st_mode):
        return None  # not ours to delete
    if time.time() - st.st_mtime > STALE_AGE_S:
        return f'older than {STALE_AGE_S // 3600} h'
    match = _STAGE_RE.match(name)
    if legacy or match is None or match['host'] != _host_tag():
        return None  # no process to ask (an older version's name, or another machine)
    pid = int(match['pid'])
    if pid == os.getpid() and name not in _ACTIVE_STAGES:
        return f'its process {pid} is gone (this process reuses its number)'
    return None if _pid_alive(pid) else f'its process {pid} is gone'


def _is_own_temp(name: str) -> bool:
    """A name only this module creates inside an output folder."""
    return bool(_STAGE_RE.match(name)) or name == _LEGACY_MARKER_TMP


def _remove_leftover(dir_fd: int, name: str) -> bool:
    """Delete a leftover staging folder or temporary file; False if it could not be."""
    try:
        if _entry_type(dir_fd, name) == 'folder':
            _rmtree_at(dir_fd, name)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except (OSError, RecursionError):
        return False
    return True


def _legacy_stage_re(out: str, tool: str) -> 're.Pattern[str]':
    """Staging folders of earlier versions: ``.{out}.{tool}-tmp-XXXXXXXX`` next to ``out``."""
    return re.compile(rf'^\.{re.escape(osp.basename(out))}\.{re.escape(tool)}-tmp-'
                      r'[a-z0-9_]{8}$')


def _clean_leftovers(dir_fd: int, names: Iterable[str], legacy: bool) -> List[str]:
    """Remove the stale ones of ``names`` (leftovers of this module); ``'name (why)'`` each."""
    removed = []
    for name in names:
        kind = _entry_type(dir_fd, name)
        if kind != ('file' if name == _LEGACY_MARKER_TMP else 'folder'):
            continue
        why = _stale_reason(dir_fd, name, legacy or name == _LEGACY_MARKER_TMP)
        if why is not None and _remove_leftover(dir_fd, name):
            removed.append(f'{name} ({why})')
    return removed


# --------------------------------------------------------------------------- commit
class _Commit:
    """The moves of one commit, journalled so that a failure can put everything back.

    Old files to be replaced or dropped first move aside into the staging folder, then the new
    files are hard-linked into place (a link never replaces an entry that appeared meanwhile;
    a file system without hard links gets a rename), then the staged copies are dropped.

    Args:
        out_fd: the destination folder.
        stage_fd: the staging folder (inside the destination).
        out: the destination's path, for messages.
    """

    def __init__(self, out_fd: int, stage_fd: int, out: str) -> None:
        self.out_fd, self.stage_fd, self.out = out_fd, stage_fd, out
        os.mkdir(_REPLACED, 0o700, dir_fd=stage_fd)
        self.bak_fd = _open_dir(_REPLACED, stage_fd)
        self.aside: List[str] = []                     # rel, moved to .replaced/<index>
        self.moved: List[Tuple[str, Tuple[int, int]]] = []  # rel and (dev, ino) moved in
        self.created: List[str] = []                   # folders made in the destination

    def move_aside(self, rels: Iterable[str]) -> None:
        """Move the regular files ``rels`` of the destination (if present) aside."""
        for rel in rels:
            with _Parent(self.out_fd, rel) as p:
                if p.fd is None or _entry_type(p.fd, p.leaf) is None:
                    continue
                if _entry_type(p.fd, p.leaf) != 'file':
                    raise OutputDirError(f'{osp.join(self.out, rel)} is no longer a file')
                slot = str(len(self.aside))
                os.rename(p.leaf, slot, src_dir_fd=p.fd, dst_dir_fd=self.bak_fd)
                self.aside.append(rel)
                if _entry_type(self.bak_fd, slot) != 'file':  # swapped in the last instant
                    raise OutputDirError(f'{osp.join(self.out, rel)} changed while committing')

    def move_in(self, rels: Iterable[str]) -> None:
        """Move the staged files ``rels`` to the same names in the destination."""
        for rel in rels:
            with _Parent(self.out_fd, rel, True, self.created) as dst, \
                    _Parent(self.stage_fd, rel) as src:
                if dst.fd is None or src.fd is None:
                    raise OutputDirError(f'{osp.join(self.out, rel)}: {dst.why or src.why}')
                st = os.stat(src.leaf, dir_fd=src.fd, follow_symlinks=False)
                _place(src.fd, src.leaf, dst.fd, dst.leaf, osp.join(self.out, rel))
                self.moved.append((rel, (st.st_dev, st.st_ino)))

    def rollback(self) -> List[str]:
        """Undo every move, newest first; returns what could not be restored."""
        failed = []
        for rel, ident in reversed(self.moved):
            with _Parent(self.out_fd, rel) as p:
                if p.fd is None:
                    failed.append(rel)
                    continue
                try:
                    st = os.stat(p.leaf, dir_fd=p.fd, follow_symlinks=False)
                    if (st.st_dev, st.st_ino) == ident:  # still our new file
                        os.unlink(p.leaf, dir_fd=p.fd)
                except OSError:
                    failed.append(rel)
        for rel in reversed(self.created):
            _rmdir_rel(self.out_fd, rel)
        for slot, rel in reversed(list(enumerate(self.aside))):
            with _Parent(self.out_fd, rel, create=True) as p:
                if p.fd is None:
                    failed.append(rel)
                    continue
                try:
                    os.rename(str(slot), p.leaf, src_dir_fd=self.bak_fd, dst_dir_fd=p.fd)
                except OSError:
                    failed.append(rel)
        return failed

    def close(self) -> None:
        os.close(self.bak_fd)


def _place(src_fd: int, src: str, dst_fd: int, dst: str, path: str) -> None:
    """Move ``src`` to ``dst`` without replacing an entry that exists there."""
    try:
        os.link(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
    except FileExistsError as e:
        raise OutputDirError(f'{path} appeared while committing; it was left alone') from e
    except OSError:  # no hard links here (some network / FUSE file systems): rename
        if _entry_type(dst_fd, dst) is not None:
            raise OutputDirError(f'{path} appeared while committing; it was left alone')
        os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        return
    os.unlink(src, dir_fd=src_fd)


def _rmdir_rel(root_fd: int, rel: str) -> bool:
    """Remove folder ``rel`` of ``root_fd`` if it is empty; False if it is not (or is gone)."""
    with _Parent(root_fd, rel) as p:
        if p.fd is None:
            return False
        try:
            os.rmdir(p.leaf, dir_fd=p.fd)
        except OSError:
            return False
    return True


def _prune_dirs(root_fd: int, rels: Iterable[str]) -> None:
    """Remove the folders of ``rels`` that are now empty, deepest first (never ``root_fd``)."""
    folders = set()
    for rel in rels:
        parts = rel.split('/')[:-1]
        folders.update('/'.join(parts[:i]) for i in range(1, len(parts) + 1))
    for folder in sorted(folders, key=lambda f: -f.count('/')):
        _rmdir_rel(root_fd, folder)


class OutputDir:
    """Stage a tool's outputs and move them into ``out`` only when all were written.

    Args:
        out: destination folder.
        tool: the tool's name (letters, digits, ``_``, ``-``), stored in the marker; a folder
            marked by another tool is refused.
        overwrite: allow replacing the files of an earlier run of ``tool`` in ``out``.
        inputs: files the tool reads; ``out`` may not hold any of them.

    Attributes:
        path: the staging folder inside ``out`` while in the ``with`` block, else ``None``.
            Prefer :meth:`open` (and :meth:`fd_path`) to writing through it: they are
            relative to the opened folder, a path is not.
        kept: after the commit, the files in ``out`` that were not ours and were kept.
        removed_leftovers: stale staging folders of killed runs removed on entry, each
            ``'name (why)'``.

    Raises:
        OutputDirError: on construction, if ``out`` is unusable (see the module docstring).
    """

    def __init__(self, out: str, tool: str, overwrite: bool = False,
                 inputs: Sequence[str] = ()) -> None:
        if not _TOOL_RE.match(tool):
            raise ValueError(f'tool must be letters, digits, "_" or "-", got {tool!r}')
        self.out = osp.realpath(osp.abspath(osp.expanduser(out)))
        self.tool = tool
        self.overwrite = overwrite
        self.path: Optional[str] = None
        self.kept: List[str] = []
        self.removed_leftovers: List[str] = []
        self._fd = self._stage_fd = self._parent_fd = None  # type: Optional[int]
        self._stage_name: Optional[str] = None
        self._created = False
        self._check_location(list(inputs))
        self._ids = (self._identity(osp.dirname(self.out)), self._identity(self.out))
        if self._ids[1] is not None:
            self._inspect(lambda fd: self._check_contents(fd))

    # ------------------------------------------------------------------ checks
    def _check_location(self, inputs: List[str]) -> None:
        out = self.out
        home = osp.realpath(osp.expanduser('~'))
        cwd = osp.realpath(os.getcwd())
        if out == osp.realpath(os.sep) or out == home or _inside(cwd, out):
            what = ('the root folder' if out == osp.realpath(os.sep) else
                    'the home folder' if out == home else
                    'the working directory' if out == cwd else 'a folder above the working '
                    'directory')
            raise OutputDirError(f'Refusing to write into {out}: it is {what}; choose a new '
                                 'folder for the outputs')
        for path in inputs:
            real = osp.realpath(osp.abspath(path))
            if _inside(real, out):
                raise OutputDirError(f'Refusing to write into {out}: it holds the input {path}; '
                                     'choose another output folder')
        if osp.lexists(out) and not osp.isdir(out):
            raise OutputDirError(f'{out} exists and is not a folder')

    @staticmethod
    def _identity(path: str) -> Optional[Tuple[int, int]]:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None

    def _inspect(self, fn):
        """Run ``fn(fd)`` on ``out`` opened for a moment (before the ``with`` block)."""
        try:
            fd = _open_dir(self.out)
        except OSError as e:
            raise OutputDirError(f'Cannot open the output folder {self.out}: '
                                 f'{_describe_error(e, self.out)}') from e
        try:
            return fn(fd)
        finally:
            os.close(fd)

    def _check_contents(self, fd: int) -> Optional[dict]:
        """The marker of the open destination, after the overwrite rules; None if empty."""
        if not [n for n in os.listdir(fd) if not _is_own_temp(n)]:
            return None
        marker = _read_marker_at(fd, self.out)
        if not self.overwrite:
            raise OutputDirError(f'{self.out} exists and is not empty (pass --overwrite to '
                                 f'replace the files of an earlier {self.tool} run)')
        if marker is None:
            raise OutputDirError(
                f'{self.out} is not empty and was not written by {self.tool} (no '
                f'{MARKER_NAME}); --overwrite only replaces a folder this tool wrote, so '
                'nothing in it is touched: choose another folder, or empty it yourself')
        if marker['tool'] != self.tool:
            raise OutputDirError(f'{self.out} holds the outputs of {marker["tool"]!r}, not '
                                 f'{self.tool!r}; choose another folder')
        return marker

    def _conflicts(self, fd: int, names: Iterable[str], ours: Set[str]) -> List[str]:
        """``'name (why)'`` for each output name that may not be written in the open folder."""
        problems, present = [], set(os.listdir(fd))
        for rel in names:
            kind, why = _lookup(fd, rel, present)
            if why:
                problems.append(f'{rel} ({why})')
            elif kind == 'file' and rel not in ours:
                problems.append(f'{rel} (a file {self.tool} did not write)')
            elif kind not in (None, 'file'):
                problems.append(f'{rel} (a {kind})')
        return problems

    def _refuse(self, problems: List[str]) -> None:
        if problems:
            more = f' and {len(problems) - 10} more' if len(problems) > 10 else ''
            raise OutputDirError(
                f'Refusing to write into {self.out}: {len(problems)} output name(s) are taken '
                f'by something {self.tool} did not write or cannot replace: '
                f'{", ".join(problems[:10])}{more}; nothing was changed: move them away or '
                'choose another folder')

    def reserve(self, names: Iterable[str]) -> None:
        """Check, before anything is written, that every output name may be written.

        A name held by a file the marker does not list, by a folder, a symlink or another
        non-regular file is refused (the commit checks again). Call it before the ``with``
        block, as soon as the names are known.

        Args:
            names: relative paths the run will write.

        Raises:
            OutputDirError: naming the taken names (nothing was changed), or an invalid name.
        """
        names = list(names)
        self._check_names(names)
        if self._identity(self.out) is None:
            return  # nothing there yet
        self._inspect(lambda fd: self._refuse(self._conflicts(
            fd, names, set((self._check_contents(fd) or dict(files=[]))['files']))))

    def _check_names(self, names: Sequence[str]) -> None:
        for rel in names:
            if not _valid_rel(rel) or rel == MARKER_NAME or _is_own_temp(rel.split('/')[0]):
                raise OutputDirError(f'Invalid output name {rel!r} for {self.out}')
        if len(names) > MAX_MARKER_ENTRIES:
            raise OutputDirError(f'{len(names)} output files for {self.out} are more than the '
                                 f'{MAX_MARKER_ENTRIES} an output marker may list')

    # ------------------------------------------------------------------ staging
    def __enter__(self) -> 'OutputDir':
        try:
            self._open_destination()
            self.removed_leftovers = self._remove_leftovers()
            self._make_stage()
        except BaseException as e:
            self._release()
            if isinstance(e, OSError):
                raise OutputDirError(f'Cannot create the output folder {self.out}: {e}') from e
            raise
        if self.removed_leftovers:
            warnings.warn(f'{self.out}: removed {len(self.removed_leftovers)} leftover(s) of '
                          f'killed runs: {", ".join(self.removed_leftovers[:5])}'
                          f'{" ..." if len(self.removed_leftovers) > 5 else ""}', stacklevel=2)
        return self

    def _open_destination(self) -> None:
        """Open (making it if needed) ``out`` once, and check it is the folder checked before."""
        parent = osp.dirname(self.out)
        os.makedirs(parent, exist_ok=True)
        self._parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY |
                                  getattr(os, 'O_CLOEXEC', 0))
        st = os.fstat(self._parent_fd)
        if self._ids[0] is not None and (st.st_dev, st.st_ino) != self._ids[0]:
            raise OutputDirError(f'{parent} was replaced while {self.tool} ran; nothing was '
                                 'written')
        base = osp.basename(self.out)
        try:
            os.mkdir(base, 0o777, dir_fd=self._parent_fd)
            self._created = True
        except FileExistsError:
            pass
        try:
            self._fd = _open_dir(base, self._parent_fd)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            raise OutputDirError(f'{self.out} was replaced by a symbolic link or a file while '
                                 f'{self.tool} ran; nothing was written') from e
        st = os.fstat(self._fd)
        if not self._created and self._ids[1] is not None and \
                (st.st_dev, st.st_ino) != self._ids[1]:
            raise OutputDirError(f'{self.out} was replaced by another folder while {self.tool} '
                                 'ran; nothing was written')
        if not self._created:
            self._check_contents(self._fd)  # what is there now decides, not what was

    def _remove_leftovers(self) -> List[str]:
        """Stale staging folders of killed runs: ours inside ``out``, older ones beside it."""
        removed = _clean_leftovers(self._fd, [n for n in os.listdir(self._fd)
                                              if _is_own_temp(n)], legacy=False)
        legacy = _legacy_stage_re(self.out, self.tool)
        removed += _clean_leftovers(self._parent_fd, [n for n in os.listdir(self._parent_fd)
                                                      if legacy.match(n)], legacy=True)
        return removed

    def _make_stage(self) -> None:
        while True:
            name = (f'{STAGE_PREFIX}{self.tool}.{_host_tag()}.{os.getpid()}.'
                    f'{secrets.token_hex(4)}')
            try:
                os.mkdir(name, 0o700, dir_fd=self._fd)  # private until the files move out
                break
            except FileExistsError:
                continue
        self._stage_name = name
        _ACTIVE_STAGES.add(name)
        self._stage_fd = _open_dir(name, self._fd)
        self.path = osp.join(self.out, name)

    def open(self, rel: str, mode: str = 'wb', encoding: Optional[str] = None) -> IO:
        """Create (or truncate) staged file ``rel`` relative to the staging folder's descriptor.

        Args:
            rel: relative output path (``/``-separated; folders are made as needed).
            mode: ``'wb'`` or ``'w'`` (text, ``encoding`` default UTF-8).
            encoding: text encoding for ``'w'``.

        Returns:
            A file object; close it (``with``) before the block ends.
        """
        if mode not in ('w', 'wb'):
            raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
        with self._staged_parent(rel) as p:
            fd = os.open(p.leaf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW |
                         getattr(os, 'O_CLOEXEC', 0), 0o666, dir_fd=p.fd)
        if mode == 'wb':
            return io.open(fd, 'wb')
        return io.open(fd, 'w', encoding=encoding or 'utf-8')

    def fd_path(self, rel: str) -> str:
        """A file name for staged ``rel`` for libraries that only take names (e.g. OpenCV).

        On Linux it goes through ``/proc/self/fd`` of the staging folder's descriptor, so a
        swap of ``out`` cannot redirect it; elsewhere it is the plain path.
        """
        with self._staged_parent(rel):
            pass
        base = f'/proc/self/fd/{self._stage_fd}'
        return osp.join(base if osp.isdir(base) else self.path, rel)

    def _staged_parent(self, rel: str) -> _Parent:
        if self._stage_fd is None:
            raise RuntimeError('OutputDir: files can be written only inside the with block')
        self._check_names([rel])
        if rel.split('/')[0] == _REPLACED:
            raise OutputDirError(f'Invalid output name {rel!r} for {self.out}')
        p = _Parent(self._stage_fd, rel, create=True)
        if p.fd is None:
            raise OutputDirError(f'Cannot stage {rel}: {p.why}')
        return p

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        committed = False
        try:
            if exc_type is None:
                self._commit()
                committed = True
        finally:
            self._release(remove_created=not committed)

    def _release(self, remove_created: bool = True) -> None:
        """Drop the staging folder (and ``out`` if we made it and nothing went in); close."""
        if self._stage_fd is not None:
            os.close(self._stage_fd)
            self._stage_fd = None
        if self._stage_name is not None and self._fd is not None:
            try:
                _rmtree_at(self._fd, self._stage_name)
            except (OSError, RecursionError) as e:
                warnings.warn(f'Could not remove the staging folder {self.path}: {e}',
                              stacklevel=3)
            _ACTIVE_STAGES.discard(self._stage_name)
        if remove_created and self._created and self._parent_fd is not None:
            try:
                os.rmdir(osp.basename(self.out), dir_fd=self._parent_fd)  # only if empty
            except OSError:
                pass
        for fd in (self._fd, self._parent_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._parent_fd = None
        self._stage_name = self.path = None

    # ------------------------------------------------------------------ commit
    def _staged_files(self) -> List[str]:
        files = []
        for rel, kind in _walk_files(self._stage_fd):
            if kind != 'file':
                raise OutputDirError(f'{self.path} holds a {kind} {rel}: only regular files '
                                     'are committed')
            files.append(rel)
        self._check_names(files)
        return files

    def _check_still_out(self) -> None:
        """``out`` still names the folder we opened (else moving in would land elsewhere)."""
        try:
            st = os.stat(osp.basename(self.out), dir_fd=self._parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        own = os.fstat(self._fd)
        if st is None or not stat.S_ISDIR(st.st_mode) or \
                (st.st_dev, st.st_ino) != (own.st_dev, own.st_ino):
            raise OutputDirError(
                f'{self.out} was moved or replaced (e.g. by a symbolic link) while {self.tool} '
                'ran; nothing was written there or anywhere else: check it and run again')

    def _plan(self, files: List[str]) -> Tuple[Set[str], List[str]]:
        """Our old files (per the marker) and the stale ones to drop; refuses conflicts."""
        self._check_still_out()
        old = self._check_contents(self._fd) or dict(files=[])
        ours = set(old['files'])
        self._refuse(self._conflicts(self._fd, files, ours))
        new, present = set(files), set(os.listdir(self._fd))
        # Only regular files reached without a symlink are ours to drop.
        stale = [rel for rel in ours if rel not in new and rel != MARKER_NAME and
                 _valid_rel(rel) and _lookup(self._fd, rel, present)[0] == 'file']
        return ours, sorted(stale)

    def _write_marker(self, files: List[str]) -> None:
        """The new marker, staged under its final name (it moves in with the files)."""
        fd = os.open(MARKER_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                     getattr(os, 'O_CLOEXEC', 0), 0o666, dir_fd=self._stage_fd)
        with io.open(fd, 'w', encoding='utf-8') as f:
            json.dump(dict(tool=self.tool, files=sorted(files)), f, indent=1)

    def _commit(self) -> None:
        files = self._staged_files()
        _, stale = self._plan(files)
        self._write_marker(files)
        txn = _Commit(self._fd, self._stage_fd, self.out)
        try:
            txn.move_aside(files + stale + [MARKER_NAME])
            txn.move_in(files + [MARKER_NAME])
        except BaseException as e:
            failed = txn.rollback()
            txn.close()
            if failed:
                raise OutputDirError(f'Committing into {self.out} failed ({e}) and these could '
                                     f'not be put back: {", ".join(failed[:10])}') from e
            if isinstance(e, OSError):
                raise OutputDirError(f'Committing into {self.out} failed ({e}); everything was '
                                     'put back as it was') from e
            raise
        txn.close()
        _prune_dirs(self._fd, stale)
        self._warn_kept(set(files) | {MARKER_NAME})

    def _warn_kept(self, ours: Set[str]) -> None:
        try:
            found = _walk_files(self._fd)
        except (OSError, RecursionError):
            return
        self.kept = [rel for rel, _ in found
                     if rel not in ours and not _is_own_temp(rel.split('/')[0])]
        if self.kept:
            more = ' ...' if len(self.kept) > 5 else ''
            warnings.warn(f'{self.out}: kept {len(self.kept)} file(s) that {self.tool} did not '
                          f'write: {", ".join(self.kept[:5])}{more}', stacklevel=3)
