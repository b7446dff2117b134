"""Model zoo: resolve zoo names from ``model-index.yml`` and download verified checkpoints.

A zoo *name* (the ``Name`` of a metafile entry) resolves to a URL:

1. ``$MMUNSUP3D_ZOO_URL/<basename of Weights>`` when the environment variable is set (a mirror,
   ``http(s)://`` or ``file://``);
2. otherwise ``file://<abs path>`` of the entry's ``Weights`` when it is committed in the
   repository (or shipped in the installed package's ``.mim``);
3. otherwise an error.

Every download is verified against a sha256 *before* the file is used: the full sha256 from the
metafile for zoo names, or the ``-<8 hex>`` prefix in an OpenMMLab-style file name for plain
URLs. The data goes to ``<cache>/<file>.part`` and is moved to its final name only once the hash
matches, so a failed, truncated or tampered transfer never leaves a complete-looking file. A
cached file is reused only if its hash still verifies.

Verifying the hash proves the file is the one published; it does not make unpickling safe.
Checkpoints are always loaded with :func:`mmunsup3d.utils.checkpoint.safe_torch_load`
(``weights_only=True`` plus a small allow-list).
"""
import hashlib
import os
import os.path as osp
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, List, Optional

import yaml

from ..utils.paths import project_roots

__all__ = ['download_checkpoint', 'resolve_model', 'list_models', 'default_cache_dir', 'sha256sum',
           'ZOO_URL_ENV', 'CACHE_DIR_ENV']

ZOO_URL_ENV = 'MMUNSUP3D_ZOO_URL'
CACHE_DIR_ENV = 'MMUNSUP3D_CACHE_DIR'
_SHORT_SHA = re.compile(r'-([0-9a-f]{8})\.pth$')
_CHUNK = 1 << 16


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
    """Names of all zoo entries, sorted."""
    return sorted(_load_index())


def resolve_model(name: str) -> dict:
    """Look up a zoo entry by name.

    Args:
        name: the ``Name`` of a metafile entry.

    Returns:
        A dict with ``name``, ``config`` (absolute path), ``sha256``, ``weights`` (the
        repo-relative ``Weights`` path), ``filename`` (its basename), ``url`` (resolved as the
        module doc describes, or ``None`` when there is no source) and ``entry`` (the raw
        metafile entry).

    Raises:
        KeyError: unknown name (the message lists the known names).
    """
    models = _load_index()
    if name not in models:
        raise KeyError(f'Unknown model "{name}". Known models: {", ".join(sorted(models))}')
    entry = models[name]
    root = entry.pop('_root')
    weights = entry.get('Weights')
    sha = (entry.get('Metadata') or {}).get('sha256')
    filename = osp.basename(weights) if weights else None
    url = None
    mirror = os.environ.get(ZOO_URL_ENV)
    if mirror and filename:
        url = f'{mirror.rstrip("/")}/{filename}'
    elif weights and not urllib.parse.urlparse(weights).scheme:
        local = osp.abspath(osp.join(root, weights))
        if osp.isfile(local):
            url = 'file://' + urllib.request.pathname2url(local)
    elif weights:
        url = weights  # a full URL in the metafile
    return dict(name=name, config=osp.join(root, entry['Config']), sha256=sha, weights=weights,
                filename=filename, url=url, entry=entry)


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


def _fetch(url: str, part: str, timeout: float) -> None:
    """Stream ``url`` into ``part``; raises on HTTP errors and truncated transfers."""
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme not in ('http', 'https', 'file'):
        raise ValueError(f'Unsupported URL scheme "{scheme}" in {url} '
                         '(expected http://, https:// or file://)')
    try:
        resp = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - scheme checked
    except urllib.error.HTTPError as e:
        raise RuntimeError(f'Download of {url} failed: HTTP {e.code} {e.reason}') from e
    except urllib.error.URLError as e:
        raise RuntimeError(f'Download of {url} failed: {e.reason}') from e
    with resp:
        length = resp.headers.get('Content-Length')
        total = int(length) if length and length.isdigit() else None
        bar = _progress(total, osp.basename(part)[:-len('.part')])
        received = 0
        try:
            with open(part, 'wb') as f:
                while True:
                    try:
                        block = resp.read(_CHUNK)
                    except Exception as e:  # http.client.IncompleteRead, socket errors
                        raise RuntimeError(
                            f'Download of {url} was interrupted after {received} bytes'
                            + (f' of {total}' if total is not None else '') + f': {e!r}'
                        ) from e
                    if not block:
                        break
                    f.write(block)
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    if total is not None and received != total:
        raise RuntimeError(f'Download of {url} is truncated: got {received} bytes, '
                           f'Content-Length says {total}')


def download_checkpoint(name_or_url: str, cache_dir: Optional[str] = None,
                        timeout: float = 60.0) -> str:
    """Download (or reuse from the cache) a checkpoint and verify its sha256.

    Args:
        name_or_url: a zoo name (see :func:`list_models`) or an ``http(s)://`` / ``file://``
            URL. A URL's file name must carry an OpenMMLab hash suffix ``-<8 hex>.pth``, which
            is checked against the file's sha256; zoo names are checked against the full
            sha256 of their metafile entry.
        cache_dir: where checkpoints are kept (default: :func:`default_cache_dir`).
        timeout: socket timeout in seconds.

    Returns:
        The absolute local path of the verified checkpoint.

    Raises:
        KeyError: unknown zoo name.
        ValueError: unsupported URL scheme, or a URL whose name carries no hash.
        RuntimeError: no download source, HTTP error, truncated transfer or hash mismatch.
            Nothing is left in the cache in any of these cases.
    """
    parsed = urllib.parse.urlparse(name_or_url)
    full_sha: Optional[str] = None
    prefix: Optional[str] = None
    if parsed.scheme and '://' in name_or_url:
        url = name_or_url
        scheme = parsed.scheme.lower()
        if scheme not in ('http', 'https', 'file'):
            raise ValueError(f'Unsupported URL scheme "{scheme}" in {url} '
                             '(expected http://, https:// or file://)')
        filename = osp.basename(urllib.parse.unquote(parsed.path))
        match = _SHORT_SHA.search(filename)
        if not match:
            raise ValueError(f'Cannot verify {url}: its file name must end in '
                             '"-<first 8 hex of sha256>.pth" (OpenMMLab naming)')
        prefix = match.group(1)
    else:
        info = resolve_model(name_or_url)
        full_sha = info['sha256']
        filename = info['filename']
        url = info['url']
        if not full_sha or not re.fullmatch(r'[0-9a-fA-F]{64}', str(full_sha)):
            raise RuntimeError(f'Zoo entry "{name_or_url}" has no valid Metadata.sha256')
        if url is None:
            raise RuntimeError(
                f'No download source for "{name_or_url}": its weights ({info["weights"]}) are '
                f'not in this checkout; set {ZOO_URL_ENV} to a mirror holding {filename}')
    if not filename or filename in ('.', '..') or os.sep in filename:
        raise ValueError(f'Cannot derive a file name from {url}')

    cache_dir = osp.abspath(osp.expanduser(cache_dir or default_cache_dir()))
    os.makedirs(cache_dir, exist_ok=True)
    final = osp.join(cache_dir, filename)
    if osp.isfile(final):
        if _hash_ok(sha256sum(final), full_sha, prefix):
            return final
        os.remove(final)  # stale or tampered: fetch again

    part = final + '.part'
    try:
        _fetch(url, part, timeout)
        actual = sha256sum(part)
        if not _hash_ok(actual, full_sha, prefix):
            expected = full_sha or f'{prefix}... (prefix from the file name)'
            raise RuntimeError(f'sha256 mismatch for {url}: expected {expected}, got {actual}')
        os.chmod(part, 0o644)
        os.replace(part, final)
    except BaseException:
        if osp.exists(part):
            os.remove(part)
        raise
    return final
