"""Model zoo: resolve zoo names from ``model-index.yml`` and download verified checkpoints.

A zoo *name* (the ``Name`` of a metafile entry, or one of its ``Alias`` names) resolves to a
URL. As in MMPose's metafiles, ``Weights`` is a URL: :data:`ZOO_BASE_URL` followed by the file
name. The URL used is:

1. ``$MMUNSUP3D_ZOO_URL/<file name>`` when the environment variable is set (a mirror,
   ``http(s)://`` or ``file://``);
2. otherwise ``file://<abs path>`` of the committed copy ``checkpoints/<file name>`` in the
   repository (or the installed package's ``.mim``), when it is there;
3. otherwise the ``Weights`` URL itself.

Every download is verified against a sha256 *before* the file is used: the full sha256 from the
metafile for zoo names, or the ``-<8 hex>`` prefix in an OpenMMLab-style file name for plain
URLs. See :func:`download_checkpoint` for how the cache is written safely (exclusive temporary
file, per-file lock, atomic rename after the hash matched) and for the limits (per-read
timeout, overall deadline, size cap, http(s)-only redirects). Every failure raises
:class:`DownloadError`.

Verifying the hash proves the file is the one published; it does not make unpickling safe.
Checkpoints are always loaded with :func:`mmunsup3d.utils.checkpoint.safe_torch_load`
(``weights_only=True`` plus a small allow-list).
"""
import contextlib
import email
import errno
import hashlib
import math
import os
import os.path as osp
import re
import socket
import stat
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import urllib.response
from typing import BinaryIO, Dict, Iterator, List, Optional

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock, see _cache_lock
    fcntl = None

import yaml

from .file_names import hash_prefix_of
from .paths import project_roots

__all__ = ['download_checkpoint', 'resolve_model', 'list_models', 'zoo_table', 'default_cache_dir',
           'sha256sum', 'DownloadError', 'ZOO_BASE_URL', 'WEIGHTS_DIR', 'ZOO_URL_ENV', 'CACHE_DIR_ENV', 'DEADLINE_ENV', 'MAX_BYTES_ENV',
           'DEFAULT_DEADLINE', 'DEFAULT_MAX_BYTES']

#: Where the zoo's checkpoints are published; metafile ``Weights`` are this URL + file name.
#: Override it with a mirror through ``$MMUNSUP3D_ZOO_URL`` (machines without internet access
#: use the copies committed under :data:`WEIGHTS_DIR`).
ZOO_BASE_URL = 'https://github.com/mmunsup3d/mmunsup3d/releases/download/zoo'
#: Repository folder of the committed copies of the zoo's checkpoints.
WEIGHTS_DIR = 'checkpoints'
ZOO_URL_ENV = 'MMUNSUP3D_ZOO_URL'
CACHE_DIR_ENV = 'MMUNSUP3D_CACHE_DIR'
DEADLINE_ENV = 'MMUNSUP3D_DOWNLOAD_DEADLINE'
MAX_BYTES_ENV = 'MMUNSUP3D_DOWNLOAD_MAX_BYTES'
DEFAULT_DEADLINE = 600.0  # seconds for a whole download_checkpoint call
DEFAULT_MAX_BYTES = 1 << 30  # size cap when the expected size is unknown
_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A checkpoint could not be downloaded or verified; the message names the URL and cause."""


def _find_root() -> str:
    for root in project_roots():
        if osp.isfile(osp.join(root, 'model-index.yml')):
            return root
    raise FileNotFoundError(f'model-index.yml not found (looked in: {project_roots()})')


def _load_index() -> Dict[str, dict]:
    """All metafile entries keyed by name; each gets a ``_root`` key (where it was found)."""
    root = _find_root()
    with open(osp.join(root, 'model-index.yml')) as f:
        index = yaml.safe_load(f) or {}
    models: Dict[str, dict] = {}
    for rel in index.get('Import', []):
        with open(osp.join(root, rel)) as f:
            meta = yaml.safe_load(f) or {}
        for entry in meta.get('Models', []) or []:
            entry = dict(entry)
            entry['_root'] = root
            models[entry['Name']] = entry
    for entry in index.get('Models', []) or []:
        entry = dict(entry)
        entry['_root'] = root
        models[entry['Name']] = entry
    return models


def list_models() -> List[str]:
    """Names of all zoo entries, in metafile order (the first is the recommended model)."""
    return list(_load_index())


def _aliases(entry: dict) -> List[str]:
    alias = entry.get('Alias') or []
    return [alias] if isinstance(alias, str) else [str(a) for a in alias]


def resolve_model(name: str) -> dict:
    """Look up a zoo entry by name or alias.

    Args:
        name: the ``Name`` of a metafile entry, or one of its ``Alias`` names.

    Returns:
        A dict with ``name``, ``aliases``, ``config`` (absolute path), ``sha256``, ``size``
        (the optional ``Metadata.size`` in bytes, else ``None``), ``weights`` (the metafile's
        ``Weights``), ``filename`` (its basename), ``local`` (absolute path of the committed
        copy, or ``None``), ``url`` (resolved as the module doc describes, or ``None`` when
        there is no source) and ``entry`` (the raw metafile entry).

    Raises:
        KeyError: unknown name (the message lists the known names and aliases).
    """
    models = _load_index()
    if name not in models:
        by_alias = [n for n, e in models.items() if name in _aliases(e)]
        if not by_alias:
            known = [f'{n} (alias {", ".join(_aliases(e))})' if _aliases(e) else n
                     for n, e in models.items()]
            raise KeyError(f'Unknown model "{name}". Known models: {", ".join(known)}')
        name = by_alias[0]
    entry = models[name]
    root = entry.pop('_root')
    weights = entry.get('Weights')
    sha = (entry.get('Metadata') or {}).get('sha256')
    size = (entry.get('Metadata') or {}).get('size')
    remote = bool(weights) and bool(urllib.parse.urlparse(weights).scheme)
    filename = osp.basename(urllib.parse.urlparse(weights).path if remote else weights) \
        if weights else None
    local = None
    if filename:
        cand = osp.join(root, WEIGHTS_DIR, filename) if remote else osp.join(root, weights)
        local = osp.abspath(cand) if osp.isfile(cand) else None
    url = None
    mirror = os.environ.get(ZOO_URL_ENV)
    if mirror and filename:
        url = f'{mirror.rstrip("/")}/{filename}'
    elif local:
        url = 'file://' + urllib.request.pathname2url(local)
    elif remote:
        url = weights
    return dict(name=name, aliases=_aliases(entry), config=osp.join(root, entry['Config']),
                sha256=sha, size=size, weights=weights, filename=filename, local=local,
                url=url, entry=entry)


def zoo_table(cache_dir: Optional[str] = None) -> List[Dict[str, object]]:
    """One row per zoo entry, in metafile order, for ``python -m mmunsup3d list``.

    Args:
        cache_dir: the download cache to look in (default: :func:`default_cache_dir`).

    Returns:
        Dicts with ``name``, ``aliases``, ``metrics`` (the first ``Results`` entry's
        ``Metrics``), ``dataset`` (its ``Dataset``), ``cached`` (a verified copy is in the
        cache) and ``committed`` (a copy is committed in the repository).
    """
    cache_dir = osp.abspath(osp.expanduser(cache_dir or default_cache_dir()))
    rows = []
    for name in list_models():
        info = resolve_model(name)
        results = (info['entry'].get('Results') or [{}])[0]
        cached = False
        if info['filename'] and info['sha256']:
            path = osp.join(cache_dir, info['filename'])
            cached = osp.isfile(path) and _hash_ok(sha256sum(path), info['sha256'], None)
        rows.append(dict(name=name, aliases=info['aliases'],
                         metrics=dict(results.get('Metrics') or {}),
                         dataset=results.get('Dataset'), cached=cached,
                         committed=info['local'] is not None))
    return rows


def default_cache_dir() -> str:
    """``$MMUNSUP3D_CACHE_DIR`` or ``~/.cache/mmunsup3d/checkpoints``."""
    return os.environ.get(CACHE_DIR_ENV) or osp.join(
        osp.expanduser('~'), '.cache', 'mmunsup3d', 'checkpoints')


def sha256sum(path: str) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _hash_ok(actual: str, full: Optional[str], prefix: Optional[str]) -> bool:
    if full:
        return actual == full.lower()
    return actual.startswith(prefix.lower())


def _progress(total: Optional[int], desc: str):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency of mmengine
        return None
    return tqdm(total=total, unit='B', unit_scale=True, unit_divisor=1024, desc=desc,
                file=sys.stderr, leave=False, disable=None)


def _positive_number(value, what: str, integer: bool = False):
    """``value`` if it is a positive finite number (an ``int`` when ``integer``), else raise."""
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or not (
            math.isfinite(value) and value > 0):
        kind = 'a positive integer' if integer else 'a positive number'
        raise ValueError(f'{what} must be {kind}, got {value!r}')
    return value


def _from_env(name: str, default, integer: bool = False):
    """The positive number in environment variable ``name``, or ``default`` when unset/empty."""
    raw = os.environ.get(name, '').strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = raw  # reported below with the variable's name
    return _positive_number(value, f'${name}', integer)


class _RedirectRefused(Exception):
    """Raised inside the opener; turned into a :class:`DownloadError` naming the original URL.

    Deliberately not an ``OSError``: ``urllib`` would wrap that in a ``URLError``.
    """

    def __init__(self, code: int, target: str):
        super().__init__(code, target)
        self.code = code
        self.target = target


class _HttpOnlyRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to ``http://`` / ``https://``.

    The stdlib handler also follows ``ftp://`` (and answers ``file://`` with an ``HTTPError``
    that reads like a server failure); a mirror must not be able to send us elsewhere.
    """

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get('location') or headers.get('uri')
        if location is not None:
            target = urllib.parse.urljoin(req.full_url, location.strip())
            if urllib.parse.urlparse(target).scheme.lower() not in ('http', 'https'):
                fp.close()
                raise _RedirectRefused(code, target)
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class _Transfer:
    """State of one download: its deadline, its sockets and a watchdog that enforces both.

    The socket timeout only bounds a *single* read, so a server that drips one byte at a time
    (headers included) is stopped by the watchdog instead, which shuts the sockets down at the
    deadline; the blocked read then returns and :attr:`expired` tells why.
    """

    def __init__(self, timeout: float, deadline_at: float):
        self.timeout = timeout
        self.deadline_at = deadline_at
        self.expired = threading.Event()
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline_at - time.monotonic()), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> '_Transfer':
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.deadline_at - time.monotonic()

    def is_over(self) -> bool:
        return self.expired.is_set() or self.left() <= 0

    def budget(self) -> float:
        """Timeout for one blocking operation: the per-read timeout, capped by the deadline."""
        return max(0.01, min(self.timeout, self.left()))

    def track(self, sock: Optional[socket.socket]) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            late = self.expired.is_set()
        if late:
            self._shutdown(sock)

    def _expire(self) -> None:
        self.expired.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        # The plain-socket method on purpose: for TLS sockets it acts on the file descriptor
        # (waking a blocked read) without touching the SSL object another thread is using.
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class _TrackingMixin:
    """HTTP(S) handler whose connections report their socket to a :class:`_Transfer`."""

    transfer: _Transfer

    def do_open(self, http_class, req, **http_conn_args):
        transfer = self.transfer

        def connection(host, timeout=None, **kwargs):
            conn = http_class(host, timeout=transfer.budget(), **kwargs)
            connect = conn.connect

            def tracked_connect():
                connect()
                transfer.track(conn.sock)

            conn.connect = tracked_connect
            return conn

        return super().do_open(connection, req, **http_conn_args)


class _HTTPHandler(_TrackingMixin, urllib.request.HTTPHandler):
    pass


if hasattr(urllib.request, 'HTTPSHandler'):  # Python built with ssl

    class _HTTPSHandler(_TrackingMixin, urllib.request.HTTPSHandler):
        pass
else:  # pragma: no cover
    _HTTPSHandler = None


class _RegularFileHandler(urllib.request.FileHandler):
    """``file://`` for regular files only.

    The stdlib handler ``open()``s the path, which blocks forever on a FIFO (no deadline can
    interrupt it): open it non-blocking, require a regular file, then read it normally.
    """

    def open_local_file(self, req):
        if req.host and req.host != 'localhost':
            raise urllib.error.URLError(f'file:// URLs must name a local file, not host '
                                        f'{req.host!r}')
        path = urllib.request.url2pathname(req.selector)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) |
                         getattr(os, 'O_CLOEXEC', 0))
        except OSError as e:
            raise urllib.error.URLError(e) from e
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise urllib.error.URLError(f'{path} is not a regular file')
        os.set_blocking(fd, True)
        headers = email.message_from_string(f'Content-Length: {info.st_size}\n')
        return urllib.response.addinfourl(os.fdopen(fd, 'rb'), headers, req.full_url)


def _build_opener(transfer: _Transfer) -> urllib.request.OpenerDirector:
    """An opener that knows only http, https and file (no ftp/data), with safe redirects."""
    opener = urllib.request.OpenerDirector()
    handlers = [urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), _HTTPHandler(),
                urllib.request.HTTPDefaultErrorHandler(), _HttpOnlyRedirectHandler(),
                urllib.request.HTTPErrorProcessor(), _RegularFileHandler()]
    if _HTTPSHandler is not None:
        handlers.append(_HTTPSHandler())
    for handler in handlers:
        if isinstance(handler, _TrackingMixin):
            handler.transfer = transfer
        opener.add_handler(handler)
    return opener


def _open(url: str, transfer: _Transfer, deadline: float):
    """Open ``url`` with :func:`_build_opener`; every failure becomes a DownloadError."""
    try:
        return _build_opener(transfer).open(url, timeout=transfer.budget())
    except _RedirectRefused as e:
        raise DownloadError(f'Download of {url} failed: redirect (HTTP {e.code}) to {e.target} '
                            'refused; only http:// and https:// redirects are followed') from None
    except urllib.error.HTTPError as e:
        e.close()
        raise DownloadError(f'Download of {url} failed: HTTP {e.code} {e.reason}') from e
    except Exception as e:  # URLError, http.client.HTTPException, socket errors
        if transfer.is_over():
            raise DownloadError(f'Download of {url} failed: overall deadline of {deadline:g} s '
                                f'exceeded before the response arrived') from e
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        if isinstance(reason, (TimeoutError, socket.timeout)):
            reason = f'no response within the {transfer.timeout:g} s timeout'
        raise DownloadError(f'Download of {url} failed: {reason}') from e


def _read_some(resp, n: int) -> bytes:
    # read1: at most one read of the socket, so the deadline is checked between small reads
    # (read(n) would block until n bytes arrived, however slowly).
    read1 = getattr(resp, 'read1', None)
    return read1(n) if read1 is not None else resp.read(n)


def _fetch(url: str, out: BinaryIO, timeout: float, deadline: float, deadline_at: float,
           cap: int) -> str:
    """Stream ``url`` into the open file ``out`` within the limits; return the data's sha256.

    Args:
        url: ``http(s)://`` or ``file://`` URL.
        out: binary file open for writing (the exclusive temporary file).
        timeout: seconds one blocking operation (connect, one read) may take.
        deadline: the overall limit in seconds (only for messages).
        deadline_at: :func:`time.monotonic` time at which the whole download must be done.
        cap: most bytes accepted.

    Returns:
        The hex sha256 of the bytes written, hashed as they arrive (no second read of a file
        that someone could have changed in between).

    Raises:
        DownloadError: any failure; the message names the URL and the cause.
    """
    digest = hashlib.sha256()
    received = 0
    total: Optional[int] = None  # Content-Length, when the server sends one
    with _Transfer(timeout, deadline_at) as transfer:

        def fail(cause: str, exc: Optional[BaseException] = None):
            if transfer.is_over():  # a read cut short by the watchdog: report the real cause
                cause = f'overall deadline of {deadline:g} s exceeded'
            raise DownloadError(f'Download of {url} failed: {cause} after {received} bytes' +
                                (f' of {total}' if total is not None else '')) from exc

        resp = _open(url, transfer, deadline)
        with resp:
            length = (resp.headers.get('Content-Length') or '').strip()
            total = int(length) if length.isdigit() else None
            if total is not None and total > cap:
                raise DownloadError(f'Download of {url} failed: Content-Length {total} exceeds '
                                    f'the size cap of {cap} bytes')
            limit = cap if total is None else total
            bar = _progress(total, osp.basename(urllib.parse.urlparse(url).path))
            try:
                while True:
                    if transfer.is_over():
                        fail('overall deadline exceeded')
                    try:
                        # One byte past the limit is enough to tell the stream is too long.
                        block = _read_some(resp, min(_CHUNK, limit - received + 1))
                    except (TimeoutError, socket.timeout) as e:
                        fail(f'no data for {timeout:g} s (read timeout)', e)
                    except Exception as e:  # http.client.IncompleteRead, socket errors
                        fail(f'interrupted ({e!r})', e)
                    if not block:
                        if transfer.is_over():
                            fail('overall deadline exceeded')
                        break
                    received += len(block)
                    if received > cap:
                        fail(f'more data than the size cap of {cap} bytes')
                    digest.update(block)
                    out.write(block)
                    if bar is not None:
                        bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
    if total is not None and received != total:
        raise DownloadError(f'Download of {url} failed: truncated, got {received} bytes but '
                            f'Content-Length says {total}')
    return digest.hexdigest()


@contextlib.contextmanager
def _cache_lock(path: str, url: str, deadline: float, deadline_at: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the lock file ``path`` (created if needed).

    The holder removes the (empty) lock file before unlocking, so the cache holds no lock
    files between downloads. A waiter that then gets the lock on the removed file sees that
    ``path`` no longer names the file it locked and starts over on the new one. The file is
    opened with ``O_NOFOLLOW`` (a planted symlink is refused, never followed) and must be a
    regular file. Without ``fcntl`` (Windows) nothing is locked: concurrent downloads of the
    same file are then duplicated, but still verified before the atomic rename.

    Raises:
        DownloadError: the lock file cannot be opened, is not a regular file, or the deadline
            passed while another download held the lock.
    """
    if fcntl is None:  # pragma: no cover - POSIX only
        yield
        return
    flags = os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
    while True:
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as e:
            why = 'it is a symlink' if e.errno == errno.ELOOP else e.strerror
            raise DownloadError(f'Download of {url} failed: cannot open the lock file {path} '
                                f'({why})') from e
        try:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):
                raise DownloadError(f'Download of {url} failed: the lock file {path} is not a '
                                    'regular file')
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    left = deadline_at - time.monotonic()
                    if left <= 0:
                        raise DownloadError(
                            f'Download of {url} failed: overall deadline of {deadline:g} s '
                            f'exceeded while waiting for another download of the same file '
                            f'(lock {path})') from None
                    time.sleep(min(0.05, left))
            try:
                current = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            if current is not None and osp.samestat(current, opened):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the previous holder removed this one; lock the new file
    try:
        yield
    finally:
        try:
            current = os.stat(path, follow_symlinks=False)
            # Only our own, still empty, lock file: never remove anything else.
            if osp.samestat(current, os.fstat(fd)) and current.st_size == 0:
                os.unlink(path)
        except OSError:
            pass
        os.close(fd)  # releases the flock


def _cached_ok(final: str, url: str, full: Optional[str], prefix: Optional[str]) -> bool:
    """Whether ``final`` is a file whose sha256 verifies."""
    if not osp.isfile(final):
        return False
    try:
        return _hash_ok(sha256sum(final), full, prefix)
    except OSError as e:
        raise DownloadError(f'Download of {url} failed: cannot read the cached file {final} '
                            f'({e.strerror})') from e


def _remove_stale_parts(cache_dir: str, filename: str) -> None:
    """Delete the ``.part`` files earlier downloads of ``filename`` left behind (killed runs).

    Called with the file's lock held: only the lock holder writes a ``.part`` of this file, so
    every one found is stale. Only regular files of this module's own naming
    (``.<file>.<8 random chars>.part``, :func:`tempfile.mkstemp`) are deleted.
    """
    own = re.compile(re.escape(f'.{filename}.') + r'[a-z0-9_]{8}\.part')
    for entry in os.scandir(cache_dir):
        if own.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass


def download_checkpoint(name_or_url: str, cache_dir: Optional[str] = None,
                        timeout: float = 60.0, deadline: Optional[float] = None,
                        max_bytes: Optional[int] = None) -> str:
    """Download (or reuse from the cache) a checkpoint and verify its sha256.

    The data is streamed into a new, exclusively created file with an unpredictable name
    (``<cache>/.<file>.<random>.part``, so nothing planted in the cache is ever followed or
    overwritten), hashed on the way, and moved onto ``<cache>/<file>`` with an atomic
    ``os.replace`` only once the hash matches. Downloads of the same file are serialized by
    ``<cache>/.<file>.lock`` (``flock``; removed again when the download ends); whoever gets
    the lock first re-checks the cache, so a verified file is reused rather than fetched
    twice, and it is never replaced by bytes that did not verify. A cached file whose hash
    does not verify is left in place until a verified download replaces it.

    Args:
        name_or_url: a zoo name (see :func:`list_models`) or an ``http(s)://`` / ``file://``
            URL. A URL's file name must carry an OpenMMLab hash suffix ``-<8 hex>.pth``, which
            is checked against the file's sha256; zoo names are checked against the full
            sha256 of their metafile entry.
        cache_dir: where checkpoints are kept (default: :func:`default_cache_dir`).
        timeout: seconds one blocking network operation (connect, one read) may take.
        deadline: seconds the whole call may take, waiting for a concurrent download of the
            same file included (default: ``$MMUNSUP3D_DOWNLOAD_DEADLINE``, else 600).
        max_bytes: most bytes accepted when the expected size is unknown (default:
            ``$MMUNSUP3D_DOWNLOAD_MAX_BYTES``, else 1 GiB). A zoo entry's optional
            ``Metadata.size`` (bytes) is used as the exact cap instead. A larger
            ``Content-Length`` is refused before reading; a longer stream is cut off.

    Returns:
        The absolute local path of the verified checkpoint.

    Raises:
        KeyError: unknown zoo name.
        ValueError: unsupported URL scheme, a URL whose name carries no hash, or a bad
            ``timeout`` / ``deadline`` / ``max_bytes`` (argument or environment variable).
        DownloadError: (a ``RuntimeError``) any other failure: no download source, HTTP
            error, refused redirect, timeout, deadline, size cap, truncated transfer, hash
            mismatch, unusable cache. The message names the URL and the cause. The cache is
            left as it was (no partial or lock file).
    """
    started = time.monotonic()
    timeout = _positive_number(timeout, 'timeout')
    if deadline is None:
        deadline = _from_env(DEADLINE_ENV, DEFAULT_DEADLINE)
    deadline = _positive_number(deadline, 'deadline')
    if max_bytes is None:
        max_bytes = _from_env(MAX_BYTES_ENV, DEFAULT_MAX_BYTES, integer=True)
    max_bytes = _positive_number(max_bytes, 'max_bytes', integer=True)
    deadline_at = started + deadline

    parsed = urllib.parse.urlparse(name_or_url)
    full_sha: Optional[str] = None
    prefix: Optional[str] = None
    cap = max_bytes
    if parsed.scheme and '://' in name_or_url:
        url = name_or_url
        scheme = parsed.scheme.lower()
        if scheme not in ('http', 'https', 'file'):
            raise ValueError(f'Unsupported URL scheme "{scheme}" in {url} '
                             '(expected http://, https:// or file://)')
        filename = osp.basename(urllib.parse.unquote(parsed.path))
        prefix = hash_prefix_of(filename)
        if not prefix:
            raise ValueError(f'Cannot verify {url}: its file name must end in '
                             '"-<first 8 hex of sha256>.pth" or "-<first 8 hex of sha256>_'
                             '<YYYYMMDD>.pth" (OpenMMLab naming)')
    else:
        info = resolve_model(name_or_url)
        full_sha = info['sha256']
        filename = info['filename']
        url = info['url']
        if not full_sha or not re.fullmatch(r'[0-9a-fA-F]{64}', str(full_sha)):
            raise DownloadError(f'Zoo entry "{name_or_url}" has no valid Metadata.sha256')
        size = info.get('size')
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise DownloadError(f'Zoo entry "{name_or_url}" has an invalid Metadata.size '
                                    f'{size!r} (expected a positive number of bytes)')
            cap = size
        if url is None:
            raise DownloadError(
                f'No download source for "{name_or_url}": its weights ({info["weights"]}) are '
                f'not in this checkout; set {ZOO_URL_ENV} to a mirror holding {filename}')
        if urllib.parse.urlparse(url).scheme.lower() not in ('http', 'https', 'file'):
            raise ValueError(f'Unsupported URL scheme in {url} (from {ZOO_URL_ENV} or the '
                             'metafile; expected http://, https:// or file://)')
    if not filename or filename in ('.', '..') or os.sep in filename:
        raise ValueError(f'Cannot derive a file name from {url}')

    cache_dir = osp.abspath(osp.expanduser(cache_dir or default_cache_dir()))
    final = osp.join(cache_dir, filename)
    if _cached_ok(final, url, full_sha, prefix):  # fast path, no lock: the rename is atomic
        return final
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as e:
        raise DownloadError(f'Download of {url} failed: cannot create the cache directory '
                            f'{cache_dir} ({e.strerror})') from e

    with _cache_lock(osp.join(cache_dir, f'.{filename}.lock'), url, deadline, deadline_at):
        # Another process may have finished this download while we waited for the lock.
        if _cached_ok(final, url, full_sha, prefix):
            return final
        _remove_stale_parts(cache_dir, filename)
        try:
            fd, part = tempfile.mkstemp(prefix=f'.{filename}.', suffix='.part', dir=cache_dir)
        except OSError as e:
            raise DownloadError(f'Download of {url} failed: cannot create a temporary file in '
                                f'{cache_dir} ({e.strerror})') from e
        try:
            with os.fdopen(fd, 'wb') as out:
                actual = _fetch(url, out, timeout, deadline, deadline_at, cap)
                if not _hash_ok(actual, full_sha, prefix):
                    expected = full_sha or f'{prefix}... (prefix from the file name)'
                    raise DownloadError(f'Download of {url} failed: sha256 mismatch, expected '
                                        f'{expected}, got {actual}')
                out.flush()
                os.fsync(out.fileno())  # the data is on disk before the name points at it
                os.fchmod(out.fileno(), 0o644)  # mkstemp creates 0600
            os.replace(part, final)
        except BaseException as e:
            try:
                os.unlink(part)  # our own exclusive file, never anything else
            except OSError:
                pass
            if isinstance(e, OSError):  # writing, fsync, rename: still one error type
                raise DownloadError(f'Download of {url} failed: {e}') from e
            raise
    return final
