"""Output folders that a tool may replace without ever deleting anything it did not write.

A tool writes its results into a private staging folder next to the destination and, once
everything is written, moves them into place. The destination gets a marker file listing the
files the tool wrote (a manifest). A later run with ``overwrite=True`` replaces only those files
and leaves every other file in the folder alone; a non-empty folder without the marker is
refused. ``/``, the home folder, the working directory (and any folder above it) and any folder
holding one of the tool's inputs are refused as destinations.

Usage::

    with OutputDir(out, tool='lift_demo', overwrite=args.overwrite, inputs=[args.input]) as stage:
        write files under stage.path
    # on success the files are in `out`; on any exception nothing changed in `out`
"""
import json
import os
import os.path as osp
import shutil
import tempfile
import warnings
from types import TracebackType
from typing import Iterable, List, Optional, Sequence, Type

__all__ = ['OutputDir', 'OutputDirError', 'MARKER_NAME', 'read_manifest', 'current_umask']

MARKER_NAME = '.mmunsup3d-output.json'


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


def read_manifest(folder: str) -> Optional[dict]:
    """The marker of ``folder`` (``{"tool", "files"}``), or ``None`` if it has none.

    Raises:
        OutputDirError: the marker exists but is not a manifest this module wrote.
    """
    path = osp.join(folder, MARKER_NAME)
    if not osp.isfile(path) or osp.islink(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise OutputDirError(f'{path} is not a readable output marker: {e}') from e
    if not isinstance(doc, dict) or not isinstance(doc.get('tool'), str) or \
            not isinstance(doc.get('files'), list) or \
            not all(isinstance(f, str) for f in doc['files']):
        raise OutputDirError(f'{path} is not an output marker written by mmunsup3d')
    return doc


def _safe_member(folder: str, rel: str) -> Optional[str]:
    """Absolute path of manifest entry ``rel`` if it really lies inside ``folder``, else None.

    The manifest is a file on disk and could have been edited; an entry such as ``../x`` or one
    reached through a symlinked sub-folder must never be touched.
    """
    if osp.isabs(rel) or not rel or rel != osp.normpath(rel) or rel.startswith('..'):
        return None
    full = osp.join(folder, rel)
    parent = osp.realpath(osp.dirname(full))
    if not _inside(parent, osp.realpath(folder)):
        return None
    return full


class OutputDir:
    """Stage a tool's outputs and move them into ``out`` only when all were written.

    Args:
        out: destination folder.
        tool: the tool's name, stored in the marker; a folder marked by another tool is refused.
        overwrite: allow replacing the files of an earlier run of ``tool`` in ``out``.
        inputs: files the tool reads; ``out`` may not hold any of them.

    Raises:
        OutputDirError: on construction, if ``out`` is unusable (see the module docstring).
    """

    def __init__(self, out: str, tool: str, overwrite: bool = False,
                 inputs: Sequence[str] = ()) -> None:
        self.out = osp.realpath(osp.abspath(osp.expanduser(out)))
        self.tool = tool
        self.overwrite = overwrite
        self.path: Optional[str] = None  # staging folder, while inside the ``with`` block
        self.kept: List[str] = []        # files in ``out`` that were not ours and were kept
        self._check(list(inputs))

    # ------------------------------------------------------------------ checks
    def _check(self, inputs: List[str]) -> None:
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
        if not osp.isdir(out) or not os.listdir(out):
            return
        marker = read_manifest(out)
        if not self.overwrite:
            raise OutputDirError(f'{out} exists and is not empty (pass --overwrite to replace '
                                 f'the files of an earlier {self.tool} run)')
        if marker is None:
            raise OutputDirError(
                f'{out} is not empty and was not written by {self.tool} (no {MARKER_NAME}); '
                '--overwrite only replaces a folder this tool wrote, so nothing in it is '
                'touched: choose another folder, or empty it yourself')
        if marker['tool'] != self.tool:
            raise OutputDirError(f'{out} holds the outputs of {marker["tool"]!r}, not '
                                 f'{self.tool!r}; choose another folder')

    # ------------------------------------------------------------------ staging
    def __enter__(self) -> 'OutputDir':
        parent = osp.dirname(self.out)
        try:
            os.makedirs(parent, exist_ok=True)
            self.path = tempfile.mkdtemp(prefix=f'.{osp.basename(self.out)}.{self.tool}-tmp-',
                                         dir=parent)
            # mkdtemp makes the folder private (0700); outputs follow the user's umask.
            os.chmod(self.path, 0o777 & ~current_umask())
        except OSError as e:
            raise OutputDirError(f'Cannot create the output folder {self.out}: {e}') from e
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            if self.path is not None and osp.isdir(self.path):
                shutil.rmtree(self.path, ignore_errors=True)  # our own staging folder
            self.path = None

    def _staged_files(self) -> List[str]:
        files = []
        for root, _, names in os.walk(self.path):
            for name in names:
                files.append(osp.relpath(osp.join(root, name), self.path))
        return sorted(f for f in files if f != MARKER_NAME)

    def _write_marker(self, folder: str, files: Iterable[str]) -> None:
        tmp = osp.join(folder, MARKER_NAME + '.tmp')
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(dict(tool=self.tool, files=sorted(files)), f, indent=1)
        os.replace(tmp, osp.join(folder, MARKER_NAME))

    def _commit(self) -> None:
        files = self._staged_files()
        if not osp.isdir(self.out) or not os.listdir(self.out):
            # Fresh destination: one rename moves everything at once.
            self._write_marker(self.path, files)
            if osp.isdir(self.out):
                os.rmdir(self.out)  # empty
            os.rename(self.path, self.out)
            self.path = None
            return
        # A folder of an earlier run (checked in __init__): replace our files one by one, drop
        # our stale ones, keep everything else.
        old = read_manifest(self.out) or dict(files=[])
        for rel in files:
            dest = osp.join(self.out, rel)
            os.makedirs(osp.dirname(dest), exist_ok=True)
            os.replace(osp.join(self.path, rel), dest)
        new = set(files)
        for rel in old['files']:
            if rel in new:
                continue
            full = _safe_member(self.out, rel)
            if full is None or osp.islink(full) or not osp.isfile(full):
                continue  # not a file we could have written: leave it
            os.remove(full)
            parent = osp.dirname(full)
            while parent != self.out and _inside(parent, self.out):
                try:
                    os.rmdir(parent)  # only succeeds if empty
                except OSError:
                    break
                parent = osp.dirname(parent)
        self._write_marker(self.out, files)
        ours = new | {MARKER_NAME}
        self.kept = sorted(
            osp.relpath(osp.join(root, n), self.out) for root, _, names in os.walk(self.out)
            for n in names if osp.relpath(osp.join(root, n), self.out) not in ours)
        if self.kept:
            warnings.warn(f'{self.out}: kept {len(self.kept)} file(s) that {self.tool} did not '
                          f'write: {", ".join(self.kept[:5])}{" ..." if len(self.kept) > 5 else ""}',
                          stacklevel=2)
