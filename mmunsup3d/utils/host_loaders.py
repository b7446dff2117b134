"""MMEngine's checkpoint schemes, loaded as MMEngine loads them but never unpickled unsafely.

MMEngine 0.10.7 resolves every scheme of its ``CheckpointLoader`` (local paths, ``file://``,
``http(s)://``, ``torchvision://``/``modelzoo://``, ``open-mmlab://``/``openmmlab://``,
``mmcls://``, ``s3://``/``petrel://``, ``pavi://``) to a file or bytes and then calls
``torch.load`` without ``weights_only`` (unsafe under ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``)
or, for URLs, ``torch.hub.load_state_dict_from_url`` whose default is ``weights_only=False``
(a downloaded file runs code). :func:`register_safe_checkpoint_loaders` (run when
``mmunsup3d`` is imported) replaces each scheme by a loader that resolves the name exactly as
MMEngine does (its own URL tables, the torch hub cache ``<torch hub dir>/checkpoints``, its
distributed download order) and unpickles with
:func:`~mmunsup3d.utils.checkpoint.safe_torch_load`. For URLs, a file name that carries a hash
(``...-<hex>.pth`` or OpenMMLab's ``...-<8 hex>_<YYYYMMDD>.pth``) is checked against the
file's sha256 before the file is used, as ``torch.hub`` does with ``check_hash=True``; a name
without one downloads as in MMEngine.

This is the smallest change that keeps both promises: every file a plain MMPose + MMEngine
process loads still loads (the allow-list covers MMEngine's checkpoints), and no pickle is ever
executed. The project's own loaders (:func:`~mmunsup3d.apis.init_lifter`, zoo downloads,
``tools/``) are stricter: they download only sha256-verified files
(:func:`~mmunsup3d.utils.zoo.download_checkpoint`).
"""
import os
import os.path as osp
import urllib.parse
import urllib.request
from tempfile import TemporaryDirectory
from typing import Any, Optional

import torch

from .checkpoint import MapLocation, safe_torch_load, safe_torch_load_bytes
from .file_names import hash_prefix_of

__all__ = ['register_safe_checkpoint_loaders', 'hub_cached_file', 'HashMismatchError']


class HashMismatchError(RuntimeError):
    """A downloaded or cached file does not match the hash in its name."""


def hub_cached_file(url: str, model_dir: Optional[str] = None, progress: bool = False) -> str:
    """Download ``url`` into the torch hub cache (if not there yet) and return its path.

    The file lands in ``model_dir`` or ``<torch.hub.get_dir()>/checkpoints``, where MMEngine's
    own http loader puts it and looks for it first, through ``torch.hub.download_url_to_file``:
    a temporary file, renamed only after the sha256 matched the hash in the file name (when
    the name carries one). As with ``torch.hub``, a file already in the cache is used as it is.

    Raises:
        HashMismatchError: the downloaded bytes do not match the hash in the name.
    """
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    filename = osp.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    cached = osp.join(model_dir, filename)
    if osp.isfile(cached):
        return cached
    prefix = hash_prefix_of(filename)
    try:
        torch.hub.download_url_to_file(url, cached, prefix, progress=progress)
    except RuntimeError as e:
        if 'invalid hash value' not in str(e):
            raise
        raise HashMismatchError(f'Download of {url} refused: its sha256 does not start with '
                                f'{prefix}, the hash in its file name ({e}); nothing was '
                                'kept') from None
    return cached


def _rank_zero_first(fetch, *args) -> str:
    """Run ``fetch`` on rank 0 first, then on the other ranks (MMEngine's download order)."""
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    path = fetch(*args) if rank == 0 else None
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = fetch(*args)
    return path


def load_from_local(filename: str, map_location: MapLocation = None) -> Any:
    """Local paths (scheme ``''``)."""
    return safe_torch_load(osp.expanduser(filename), map_location)


def load_from_file_url(filename: str, map_location: MapLocation = None) -> Any:
    """``file://`` URLs: the local file they name."""
    parsed = urllib.parse.urlparse(filename)
    if parsed.netloc not in ('', 'localhost'):
        raise ValueError(f'{filename}: file:// URLs must name a local file (host "'
                         f'{parsed.netloc}" is not supported)')
    return safe_torch_load(urllib.request.url2pathname(parsed.path), map_location)


def load_from_http(filename: str, map_location: MapLocation = None,
                   model_dir: Optional[str] = None, progress: bool = False) -> Any:
    """``http(s)://``: cached in the torch hub directory, hash-checked when named, safe."""
    path = _rank_zero_first(hub_cached_file, filename, model_dir, progress)
    if torch.hub._is_legacy_zip_format(path):  # torch < 1.6 files zipped by hand
        with TemporaryDirectory() as tmp:
            import zipfile
            with zipfile.ZipFile(path) as archive:
                member = archive.infolist()[0].filename
                archive.extract(member, tmp)
            return safe_torch_load(osp.join(tmp, member), map_location)
    return safe_torch_load(path, map_location)


def load_from_torchvision(filename: str, map_location: MapLocation = None) -> Any:
    """``torchvision://NAME`` and the deprecated ``modelzoo://NAME``."""
    from mmengine.runner.checkpoint import get_torchvision_models
    name = filename.split('://', 1)[1]
    return load_from_http(get_torchvision_models()[name], map_location)


def load_from_openmmlab(filename: str, map_location: MapLocation = None) -> Any:
    """``open-mmlab://NAME`` / ``openmmlab://NAME`` (MMEngine's table, deprecated names)."""
    from mmengine.runner.checkpoint import (_get_mmengine_home, get_deprecated_model_names,
                                            get_external_models)
    name = filename.split('://', 1)[1]
    name = get_deprecated_model_names().get(name, name)
    url = get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location)
    path = osp.join(_get_mmengine_home(), url)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} can not be found.')
    return safe_torch_load(path, map_location)


def load_from_mmcls(filename: str, map_location: MapLocation = None) -> Any:
    """``mmcls://NAME``: MMEngine's mmcls table, keys converted as MMEngine does."""
    from mmengine.runner.checkpoint import _process_mmcls_checkpoint, get_mmcls_models
    url = get_mmcls_models()[filename[len('mmcls://'):]]
    return _process_mmcls_checkpoint(load_from_http(url, map_location))


def load_from_ceph(filename: str, map_location: MapLocation = None,
                   backend: str = 'petrel') -> Any:
    """``s3://`` / ``petrel://`` (optionally ``<cluster>:``-prefixed) through MMEngine's backend."""
    from mmengine.fileio import get_file_backend
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    return safe_torch_load_bytes(data, filename, map_location)


def load_from_pavi(filename: str, map_location: MapLocation = None) -> Any:
    """``pavi://`` (needs the ``pavi`` package, as in MMEngine)."""
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError('Please install pavi to load checkpoint from modelcloud.') from None
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as tmp:
        path = osp.join(tmp, model.name)
        model.download(path)
        return safe_torch_load(path, map_location)


_SCHEMES = {
    '': load_from_local,
    'file://': load_from_file_url,
    ('http://', 'https://'): load_from_http,
    ('modelzoo://', 'torchvision://'): load_from_torchvision,
    ('open-mmlab://', 'openmmlab://'): load_from_openmmlab,
    'mmcls://': load_from_mmcls,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_ceph,
    'pavi://': load_from_pavi,
}


def register_safe_checkpoint_loaders() -> None:
    """Replace MMEngine's checkpoint loaders by the safe ones of this module (idempotent)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefixes, loader in _SCHEMES.items():
        CheckpointLoader.register_scheme(prefixes, loader, force=True)
