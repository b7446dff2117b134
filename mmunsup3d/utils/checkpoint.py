"""Safe and strict checkpoint loading.

**Safe.** Every checkpoint is unpickled by ``torch.load(weights_only=True)`` with a small
allow-list (tensors, NumPy arrays/scalars and MMEngine's ``HistoryBuffer``, which MMEngine 0.10.7
stores in ``meta``/``message_hub``); nothing is ever loaded with ``weights_only=False``. The
argument is passed *explicitly*: torch 2.14's ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` only
overrides calls that omit it (see ``torch.serialization.load``), so the variable cannot turn
this loader unsafe. MMEngine's own loaders omit it (``load_checkpoint``, ``Runner.resume``,
``load_from``, ``init_cfg=dict(type='Pretrained')``), and for URLs they call
``torch.hub.load_state_dict_from_url`` whose default is ``weights_only=False``; so
:func:`register_safe_checkpoint_loaders` (run by :func:`allow_checkpoint_globals` when
``mmunsup3d`` is imported) replaces every scheme of MMEngine's ``CheckpointLoader``: local
paths, ``file://`` and ``http(s)://`` (sha256-verified download) go through
:func:`safe_torch_load`, every other scheme is refused.

Stock ``HistoryBuffer.__getstate__`` also pickles its built-in statistics methods as
``getattr(HistoryBuffer, 'min')``; allowing ``getattr`` would let a file reach arbitrary
attributes, so instead :func:`allow_checkpoint_globals` makes new checkpoints store only
*custom* statistics methods (the built-in ones are restored by ``__setstate__`` anyway). Old
checkpoints that carry ``getattr`` are refused with a clear error rather than unpickled.

**Strict.** MMEngine's ``load_checkpoint`` is non-strict and only warns, so a checkpoint of
another architecture silently evaluates random weights. :func:`load_state_dict_strict` checks
the keys a run needs (the submodules under ``prefixes``, e.g. ``lifter.`` for inference) and
raises :class:`CheckpointMismatchError` naming every missing, unexpected or mis-shaped key;
keys outside ``prefixes`` (the discriminators of a training checkpoint) are ignored without a
warning, so a lifter-only (published) checkpoint loads silently for testing and inference.
"""
import os
import os.path as osp
import pickle
import re
import urllib.parse
import urllib.request
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

__all__ = [
    'checkpoint_safe_globals', 'allow_checkpoint_globals', 'register_safe_checkpoint_loaders',
    'safe_torch_load', 'checkpoint_state_dict', 'inference_prefixes', 'load_state_dict_strict',
    'load_checkpoint_strict', 'UnsafeCheckpointError', 'CheckpointMismatchError'
]

MapLocation = Optional[Union[str, torch.device, Callable, Dict[str, str]]]


class UnsafeCheckpointError(RuntimeError):
    """The checkpoint asks to unpickle an object outside the allow-list."""


class CheckpointMismatchError(ValueError):
    """The checkpoint's weights do not fit the model (missing/unexpected keys, shapes)."""


def checkpoint_safe_globals() -> List[Any]:
    """The globals MMEngine checkpoints (state dicts + meta + message hub) need."""
    from mmengine.logging import HistoryBuffer
    from numpy.core.multiarray import _reconstruct, scalar  # numpy 2 re-exports from _core
    dtypes = [type(np.dtype(t)) for t in
              ('float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8',
               'bool')]
    # ``bytes``: protocol-2 pickles rebuild empty byte strings by calling it (harmless).
    return [HistoryBuffer, _reconstruct, scalar, np.ndarray, np.dtype, bytes, *dtypes]


_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getstate(self) -> dict:
    """``HistoryBuffer`` state without references to its built-in methods (see module doc)."""
    state = {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}
    custom = {k: v for k, v in self._statistics_methods.items() if k not in _DEFAULT_STATISTICS}
    if custom:
        state['statistics_methods'] = custom
    return state


def _add_safe_globals() -> None:
    """Patch ``HistoryBuffer`` pickling and add the allow-list to torch's global list."""
    from mmengine.logging import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


def allow_checkpoint_globals() -> None:
    """Make all checkpoint loading in this process safe (called when ``mmunsup3d`` is imported).

    Adds :func:`checkpoint_safe_globals` to torch's process-wide allow-list (MMEngine
    checkpoints load with ``weights_only=True`` under torch >= 2.6) and routes MMEngine's
    ``CheckpointLoader`` through :func:`safe_torch_load`
    (:func:`register_safe_checkpoint_loaders`), so ``runner.resume``, ``load_from`` and
    ``load_checkpoint`` never unpickle unsafely, whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
    says.
    """
    _add_safe_globals()
    register_safe_checkpoint_loaders()


# ----------------------------------------------------------------------------- safe loading
_ZIP_MAGIC = b'PK\x03\x04'
# Legacy (non-zip) torch files start with the pickled magic number, in the protocol used.
_LEGACY_HEADERS = tuple(
    pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=p)
    for p in range(2, pickle.HIGHEST_PROTOCOL + 1))
# Refusals of the weights-only unpickler that mean "an object outside the allow-list", as
# opposed to a malformed stream.
_UNSAFE_PATTERN = re.compile(
    r'Unsupported global|is blocked|unrecognized function|Can only create new object|'
    r'Can only build|must be imported to load')


def _check_container(path: str) -> None:
    """Raise ``RuntimeError`` unless ``path`` looks like a torch file (zip or legacy)."""
    head_len = max(len(_ZIP_MAGIC), *(len(h) for h in _LEGACY_HEADERS))
    with open(path, 'rb') as f:
        head = f.read(head_len)
    if not head:
        raise RuntimeError(f'Checkpoint {path} is empty: not a checkpoint (corrupt or '
                           'truncated file)')
    if not head.startswith(_ZIP_MAGIC) and not head.startswith(_LEGACY_HEADERS):
        raise RuntimeError(f'Checkpoint {path} is not a checkpoint or is corrupt: it is '
                           'neither a torch zip archive nor a legacy torch file (first bytes '
                           f'{head[:8]!r})')


def _unpickler_detail(exc: BaseException) -> str:
    """The weights-only unpickler's own message, without torch's advice to load unsafely.

    torch re-raises the unpickler's error with a long text that recommends
    ``weights_only=False``; the original error is kept as ``__context__``.
    """
    raw = exc.__context__ if isinstance(exc.__context__, pickle.UnpicklingError) else exc
    text = str(raw).strip()
    # "Unsupported global: GLOBAL x was not an allowed global by default. Please use ..."
    return text.split('. Please use')[0].splitlines()[0] if text else type(raw).__name__


def safe_torch_load(path: Union[str, os.PathLike], map_location: MapLocation = 'cpu') -> Any:
    """``torch.load(path, weights_only=True)`` with the MMEngine allow-list.

    Safe under ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (an explicit ``weights_only=True`` wins).

    Args:
        path: local checkpoint file.
        map_location: as for :func:`torch.load`.

    Returns:
        The unpickled checkpoint (usually a dict with ``state_dict`` and ``meta``).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        UnsafeCheckpointError: the file references a global outside the allow-list (for
            example a pickled payload that would run code). Nothing of it was executed.
        RuntimeError: the file is not a torch checkpoint, or is truncated or corrupt.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    _check_container(path)
    # Not torch's ``safe_globals`` context manager: on exit it would also remove these globals
    # from the process-wide list that other loaders of this process rely on.
    _add_safe_globals()
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        detail = _unpickler_detail(e)
        # ``from None``: the chained torch message would advise weights_only=False.
        if _UNSAFE_PATTERN.search(detail):
            raise UnsafeCheckpointError(
                f'Refusing to load {path}: it references objects outside the checkpoint '
                f'allow-list (tensors, NumPy arrays, MMEngine meta); it may carry code that '
                f'would run when unpickled, and nothing of it was executed. Only load '
                f'checkpoints you trust. Detail: {detail}') from None
        raise RuntimeError(f'Checkpoint {path} is corrupt or not a checkpoint (unreadable '
                           f'pickle stream): {detail}') from None
    except Exception as e:  # zip reader, EOF, struct and decoding errors of damaged files
        raise RuntimeError(f'Checkpoint {path} is corrupt, truncated or not a checkpoint: '
                           f'{type(e).__name__}: {str(e).strip()[:500]}') from e


# ------------------------------------------------------------ MMEngine's CheckpointLoader
# The function names follow MMEngine's ``load_from_<name>``: CheckpointLoader logs
# "Loads checkpoint by <name> backend".
def load_from_local_safe(filename: str, map_location: MapLocation = None) -> Any:
    """MMEngine loader for local paths (scheme prefix ``''``), via :func:`safe_torch_load`."""
    return safe_torch_load(osp.expanduser(filename), map_location)


def load_from_file_url_safe(filename: str, map_location: MapLocation = None) -> Any:
    """MMEngine loader for ``file://`` URLs: the local file they name, loaded safely."""
    parsed = urllib.parse.urlparse(filename)
    if parsed.netloc not in ('', 'localhost'):
        raise ValueError(f'{filename}: file:// URLs must name a local file (host "'
                         f'{parsed.netloc}" is not supported)')
    return safe_torch_load(urllib.request.url2pathname(parsed.path), map_location)


def load_from_http_safe(filename: str, map_location: MapLocation = None) -> Any:
    """MMEngine loader for ``http(s)://``: sha256-verified download, then a safe load.

    The download is :func:`mmunsup3d.utils.zoo.download_checkpoint` (the file name must carry
    the OpenMMLab ``-<8 hex of sha256>.pth`` suffix). As MMEngine's own loader, rank 0
    downloads first in distributed runs; the others then find it in the cache.
    """
    from mmengine.dist import get_dist_info
    from .zoo import download_checkpoint
    rank, world_size = get_dist_info()
    path = download_checkpoint(filename) if rank == 0 else None
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = download_checkpoint(filename)
    return safe_torch_load(path, map_location)


def load_from_unsupported(filename: str, map_location: MapLocation = None) -> Any:
    """MMEngine loader for every other scheme (pavi, s3, open-mmlab, torchvision...): refuse.

    MMEngine's loaders for them unpickle without ``weights_only`` (unsafe under
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``).
    """
    raise ValueError(f'Cannot load checkpoint {filename}: mmunsup3d loads checkpoints only '
                     'from local paths, file:// and http(s):// URLs (safe loader); download '
                     'it and pass the local path')


_SAFE_SCHEMES = {
    '': load_from_local_safe,
    'file://': load_from_file_url_safe,
    'http://': load_from_http_safe,
    'https://': load_from_http_safe,
}
# MMEngine 0.10.7's other schemes, refused even if a future version stops registering them
# at import (those it registers then are found in ``CheckpointLoader._schemes`` as well).
_REFUSED_SCHEMES = ('pavi://', r'(\S+\:)?s3://', r'(\S+\:)?petrel://', 'modelzoo://',
                    'torchvision://', 'open-mmlab://', 'openmmlab://', 'mmcls://')


def register_safe_checkpoint_loaders() -> None:
    """Route every scheme of MMEngine's ``CheckpointLoader`` through the safe loader.

    Idempotent. Local paths, ``file://`` and ``http(s)://`` load via :func:`safe_torch_load`;
    any other registered scheme raises ``ValueError``.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    registered = set(getattr(CheckpointLoader, '_schemes', {}))
    for prefix in sorted(registered.union(_REFUSED_SCHEMES) - set(_SAFE_SCHEMES)):
        CheckpointLoader.register_scheme(prefix, load_from_unsupported, force=True)
    for prefix, loader in _SAFE_SCHEMES.items():
        CheckpointLoader.register_scheme(prefix, loader, force=True)


# ---------------------------------------------------------------------------- strict loading
def checkpoint_state_dict(checkpoint: Any, source: str = 'checkpoint') -> 'OrderedDict[str, Any]':
    """The weights of a loaded checkpoint, as MMEngine reads them.

    ``checkpoint['state_dict']`` when present, else the checkpoint itself; a ``module.``
    prefix (a model saved inside its DDP wrapper) is stripped, as MMEngine's
    ``load_checkpoint`` does by default.

    Raises:
        RuntimeError: ``checkpoint`` is not a dict of weights.
    """
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) \
        else None
    if not isinstance(state, Mapping):
        raise RuntimeError(f'Checkpoint {source} holds no state_dict (got '
                           f'{type(checkpoint).__name__})')
    out = OrderedDict((re.sub(r'^module\.', '', str(k)), v) for k, v in state.items())
    metadata = getattr(state, '_metadata', None)
    if metadata is not None:  # module versions, read by some _load_from_state_dict
        out._metadata = OrderedDict((re.sub(r'^module\.?', '', k), v)
                                    for k, v in metadata.items())
    return out


def _unwrapped_key(key: str, own: Mapping[str, Any]) -> str:
    """``key`` without the ``module.`` segments of nested DDP wrappers, if the model has it.

    Checkpoints of distributed runs written before ``BareStateDictHook`` carry keys such as
    ``lifter.module.stem.0.weight`` (``MMSeparateDistributedDataParallel`` wraps each
    sub-network); the bare model calls it ``lifter.stem.0.weight``.
    """
    if key in own or '.module.' not in key:
        return key
    bare = re.sub(r'(^|\.)module\.', r'\1', key)
    return bare if bare in own else key


def _bare(module: nn.Module) -> nn.Module:
    from mmengine.model import is_model_wrapper
    while is_model_wrapper(module):
        module = module.module
    return module


def inference_prefixes(model: nn.Module) -> Tuple[str, ...]:
    """State-dict prefixes a test / inference forward pass of ``model`` uses.

    A model may declare them with an ``inference_modules`` attribute (attribute names, e.g.
    ``Unsup3DLifter``: ``('lifter',)``); otherwise every key is needed (``('',)``).
    """
    names = getattr(_bare(model), 'inference_modules', None)
    if names is None:
        return ('', )
    return tuple(f'{n}.' for n in names)


def _format_keys(keys: Sequence[str], limit: int = 10) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')


def _residual_lifter_hint(module: nn.Module, own: Mapping[str, Any], given: Mapping[str, Any],
                          prefix: str) -> Optional[str]:
    """The config options that build the ``ResidualLifter`` whose weights ``given`` holds.

    Read from the checkpoint's shapes under ``prefix`` (``'lifter.'``): ``stem.0.weight`` is
    ``(width, J * in_channels)``, ``blocks.<i>.*`` count the residual blocks and
    ``stem.1.*`` is the BatchNorm (``use_bn``); ``J`` is the model's (the skeleton comes from
    the config). The option names are the config path of the submodule, ``model.<prefix>``.

    Returns:
        A message line naming the options (all of ``width``, ``num_blocks``, ``in_channels``,
        plus ``use_bn`` where it differs), or ``None`` when either side is not a residual
        lifter or the checkpoint's lifter already has the model's hyper-parameters (the
        mismatch is then something these options cannot fix).
    """
    key = prefix + 'stem.0.weight'
    stem, own_stem = given.get(key), own.get(key)
    if not prefix or not isinstance(stem, torch.Tensor) or stem.ndim != 2 or \
            not isinstance(own_stem, torch.Tensor) or own_stem.ndim != 2:
        return None
    try:
        lifter = module.get_submodule(prefix[:-1])
    except AttributeError:
        return None
    joints = int(getattr(lifter, 'num_keypoints', 0) or 0)
    block_re = re.compile(re.escape(prefix) + r'blocks\.(\d+)\.')

    def arch(state: Mapping[str, Any]) -> Dict[str, Any]:
        width, features = state[key].shape
        blocks = {int(m.group(1)) for m in map(block_re.match, state) if m}
        found = dict(width=int(width), num_blocks=max(blocks) + 1 if blocks else 0)
        if joints and features % joints == 0:
            found['in_channels'] = int(features // joints)
        found['use_bn'] = prefix + 'stem.1.running_mean' in state
        return found

    ckpt_arch, model_arch = arch(given), arch(own)
    if ckpt_arch == model_arch:
        return None
    names = ['width', 'num_blocks', 'in_channels'] + (
        ['use_bn'] if ckpt_arch['use_bn'] != model_arch['use_bn'] else [])

    def listed(found: Dict[str, Any]) -> str:
        return ', '.join(f'{n}={found[n]}' for n in names if n in found)

    options = {f'model.{prefix}{n}': ckpt_arch[n] for n in names if n in ckpt_arch}
    cli = ' '.join(f'{k}={v}' for k, v in options.items())
    api = ', '.join(f'{k!r}: {v!r}' for k, v in options.items())
    return (f'the checkpoint holds a ResidualLifter with {listed(ckpt_arch)} (the model: '
            f'{listed(model_arch)}); build that lifter with --cfg-options {cli} '
            f'(tools/test.py, tools/train.py; cfg_options={{{api}}} for '
            'mmunsup3d.apis.init_lifter)')


def load_state_dict_strict(module: nn.Module,
                           state_dict: Mapping[str, Any],
                           prefixes: Optional[Sequence[str]] = ('lifter.', ),
                           source: str = 'checkpoint') -> None:
    """Load the keys of ``state_dict`` under ``prefixes`` into ``module``, strictly.

    Every key of ``module``'s state dict under ``prefixes`` must be in ``state_dict`` with the
    same shape, and ``state_dict`` must hold no other key under ``prefixes``; keys outside them
    are ignored on both sides (left as they are in ``module``). Floating-point values are cast
    to the module's dtype (half-precision published checkpoints).

    Args:
        module: the model (a DDP-style wrapper is unwrapped).
        state_dict: checkpoint weights, see :func:`checkpoint_state_dict`.
        prefixes: key prefixes of the submodules that must be loaded (``'lifter.'``; a name
            without the trailing dot gets one); ``None`` or ``('',)`` = every key.
        source: the checkpoint's name for messages (its path).

    Raises:
        CheckpointMismatchError: listing the missing keys, the unexpected keys and each
            mis-shaped key with the checkpoint's and the model's shape; when a residual lifter
            of another width / depth / input channels is the cause, also the exact
            ``--cfg-options model.lifter.width=... model.lifter.num_blocks=...
            model.lifter.in_channels=...`` that build the checkpoint's lifter (read from its
            shapes).
    """
    module = _bare(module)
    prefixes = tuple(p if p == '' or p.endswith('.') else p + '.' for p in (prefixes or ('', )))

    def needed(key: str) -> bool:
        return key.startswith(prefixes)

    from mmengine.runner.checkpoint import get_state_dict
    # The bare model's keys, also inside nested wrappers (distributed GAN training wraps each
    # sub-network in its own DDP).
    own = get_state_dict(module)
    given = OrderedDict((_unwrapped_key(k, own), v) for k, v in state_dict.items())
    given = OrderedDict((k, v) for k, v in given.items() if needed(k))
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        given._metadata = metadata
    wanted = [k for k in own if needed(k)]
    missing = [k for k in wanted if k not in given]
    unexpected = [k for k in given if k not in own]
    problems = []
    if missing:
        problems.append(f'missing keys ({len(missing)}): {_format_keys(missing)}')
    if unexpected:
        problems.append(f'unexpected keys ({len(unexpected)}): {_format_keys(unexpected)}')
    bad = []
    for key in wanted:
        if key not in given:
            continue
        value = given[key]
        if not isinstance(value, torch.Tensor):
            bad.append(f'{key}: checkpoint has a {type(value).__name__}, model a tensor of '
                       f'shape {tuple(own[key].shape)}')
        elif value.shape != own[key].shape:
            bad.append(f'{key}: checkpoint shape {tuple(value.shape)}, model shape '
                       f'{tuple(own[key].shape)}')
    if bad:
        problems.append(f'shape mismatch ({len(bad)}): {"; ".join(bad[:10])}'
                        + (f'; ... ({len(bad) - 10} more)' if len(bad) > 10 else ''))
    if problems:
        scope = 'all keys' if prefixes == ('', ) else 'keys under ' + ', '.join(
            repr(p) for p in prefixes)
        hints = [h for h in (_residual_lifter_hint(module, own, given, p) for p in prefixes)
                 if h]
        raise CheckpointMismatchError(
            f'Checkpoint {source} does not fit the model ({scope}; does the config match '
            'the checkpoint?):\n  ' + '\n  '.join(problems + hints))
    # Keys outside ``prefixes`` keep the model's own values, so the load is complete and
    # strict (MMEngine's loader, which also unwraps nested DDP wrappers).
    from mmengine.runner.checkpoint import load_state_dict
    full = OrderedDict(own)
    full.update(given)
    full._metadata = getattr(own, '_metadata', None)
    load_state_dict(module, full, strict=True)


def load_checkpoint_strict(model: nn.Module,
                           filename: str,
                           map_location: MapLocation = 'cpu',
                           prefixes: Optional[Sequence[str]] = None) -> Any:
    """Safely load ``filename`` and strictly load its weights into ``model``.

    Args:
        model: the model (a wrapper is unwrapped).
        filename: local checkpoint path.
        map_location: as for :func:`torch.load`.
        prefixes: submodules that must be loaded; default :func:`inference_prefixes` (what a
            test / inference forward pass uses: ``('lifter.',)`` for ``Unsup3DLifter``).

    Returns:
        The loaded checkpoint (``meta`` etc. included).

    Raises:
        FileNotFoundError, UnsafeCheckpointError, RuntimeError: see :func:`safe_torch_load`
            (and a checkpoint that holds no state dict).
        CheckpointMismatchError: see :func:`load_state_dict_strict`.
    """
    checkpoint = safe_torch_load(filename, map_location=map_location)
    state = checkpoint_state_dict(checkpoint, filename)
    if prefixes is None:
        prefixes = inference_prefixes(model)
    load_state_dict_strict(model, state, prefixes, source=filename)
    return checkpoint
