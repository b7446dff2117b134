"""Safe and strict checkpoint loading.

**Safe.** Every checkpoint is unpickled by ``torch.load(weights_only=True)`` with the
allow-list of :mod:`mmunsup3d.utils.checkpoint_globals` (tensors, NumPy arrays/scalars,
MMEngine's ``HistoryBuffer`` and ``ConfigDict``, sets), added for that one load only; nothing
is ever loaded with ``weights_only=False``. The argument is passed *explicitly*: torch 2.14's
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` only overrides calls that omit it (see
``torch.serialization.load``), so the variable cannot turn this loader unsafe. A file that
needs anything else is refused with :class:`UnsafeCheckpointError`, which names mmunsup3d and
the deliberate way to trust a file (``python -m mmunsup3d convert-checkpoint IN OUT --trust``).
MMEngine's own loaders (``load_checkpoint``, ``Runner.resume``, ``load_from``,
``init_cfg=dict(type='Pretrained')``) reach the same loader through
:mod:`mmunsup3d.utils.host_loaders`.

**Strict.** MMEngine's ``load_checkpoint`` is non-strict and only warns, so a checkpoint of
another architecture silently evaluates random weights. :func:`load_state_dict_strict` checks
the keys a run needs (the submodules under ``prefixes``, e.g. ``lifter.`` for inference) and
raises :class:`CheckpointMismatchError` naming every missing, unexpected, mis-shaped,
wrongly typed or non-finite key; keys outside ``prefixes`` (the discriminators of a training
checkpoint) are ignored without a warning, so a lifter-only (published) checkpoint loads
silently for testing and inference.
"""
import io
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .checkpoint_globals import checkpoint_globals, plain_values

__all__ = [
    'safe_torch_load', 'safe_torch_load_bytes', 'checkpoint_state_dict', 'inference_prefixes',
    'load_state_dict_strict', 'load_checkpoint_strict', 'UnsafeCheckpointError',
    'CheckpointMismatchError'
]

MapLocation = Optional[Union[str, torch.device, Callable, Dict[str, str]]]


class UnsafeCheckpointError(RuntimeError):
    """The checkpoint asks to unpickle an object outside the allow-list."""


class CheckpointMismatchError(ValueError):
    """The checkpoint's weights do not fit the model (missing/unexpected keys, shapes)."""


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


def _check_header(head: bytes, source: str) -> None:
    """Raise ``RuntimeError`` unless ``head`` starts like a torch file (zip or legacy)."""
    if not head:
        raise RuntimeError(f'Checkpoint {source} is empty: not a checkpoint (corrupt or '
                           'truncated file)')
    if not head.startswith(_ZIP_MAGIC) and not head.startswith(_LEGACY_HEADERS):
        raise RuntimeError(f'Checkpoint {source} is not a checkpoint or is corrupt: it is '
                           'neither a torch zip archive nor a legacy torch file (first bytes '
                           f'{head[:8]!r})')


_HEAD_LEN = max(len(_ZIP_MAGIC), *(len(h) for h in _LEGACY_HEADERS))


def _unpickler_detail(exc: BaseException) -> str:
    """The weights-only unpickler's own message, without torch's advice to load unsafely.

    torch re-raises the unpickler's error with a long text that recommends
    ``weights_only=False``; the original error is kept as ``__context__``.
    """
    raw = exc.__context__ if isinstance(exc.__context__, pickle.UnpicklingError) else exc
    text = str(raw).strip()
    # "Unsupported global: GLOBAL x was not an allowed global by default. Please use ..."
    return text.split('. Please use')[0].splitlines()[0] if text else type(raw).__name__


def _unsafe(source: str, detail: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f'Refusing to load {source}: mmunsup3d (imported in this process) loads checkpoints '
        'with weights_only=True and an allow-list (tensors, NumPy arrays and scalars, MMEngine '
        'meta and message hub, ConfigDict, sets), and this file references an object outside '
        'it, which could run code when unpickled; nothing of it was executed. If you trust '
        'the file, re-save it once without such objects: python -m mmunsup3d '
        f'convert-checkpoint {source} SAFE.pth --trust, then load SAFE.pth. Detail: {detail}')


def _weights_only_load(f: Any, source: str, map_location: MapLocation) -> Any:
    """``torch.load(f, weights_only=True)`` inside :func:`checkpoint_globals`, errors named."""
    try:
        with checkpoint_globals():
            return plain_values(torch.load(f, map_location=map_location, weights_only=True))
    except pickle.UnpicklingError as e:
        detail = _unpickler_detail(e)
        # ``from None``: the chained torch message would advise weights_only=False.
        if _UNSAFE_PATTERN.search(detail):
            raise _unsafe(source, detail) from None
        raise RuntimeError(f'Checkpoint {source} is corrupt or not a checkpoint (unreadable '
                           f'pickle stream): {detail}') from None
    except Exception as e:  # zip reader, EOF, struct and decoding errors of damaged files
        raise RuntimeError(f'Checkpoint {source} is corrupt, truncated or not a checkpoint: '
                           f'{type(e).__name__}: {str(e).strip()[:500]}') from e


def safe_torch_load(path: Union[str, os.PathLike], map_location: MapLocation = 'cpu') -> Any:
    """``torch.load(path, weights_only=True)`` with the checkpoint allow-list.

    Safe under ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (an explicit ``weights_only=True`` wins).

    Args:
        path: local checkpoint file.
        map_location: as for :func:`torch.load`.

    Returns:
        The unpickled checkpoint (usually a dict with ``state_dict`` and ``meta``); NumPy
        arrays in it are plain ``numpy.ndarray``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        UnsafeCheckpointError: the file references a global outside the allow-list (for
            example a pickled payload that would run code). Nothing of it was executed.
        RuntimeError: the file is not a torch checkpoint, or is truncated or corrupt.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    with open(path, 'rb') as f:
        _check_header(f.read(_HEAD_LEN), path)
    return _weights_only_load(path, path, map_location)


def safe_torch_load_bytes(data: bytes, source: str, map_location: MapLocation = 'cpu') -> Any:
    """:func:`safe_torch_load` for a checkpoint held in memory (object stores).

    Args:
        data: the file's bytes.
        source: its name for messages (the URL).
        map_location: as for :func:`torch.load`.
    """
    _check_header(bytes(data[:_HEAD_LEN]), source)
    with io.BytesIO(data) as buffer:
        return _weights_only_load(buffer, source, map_location)


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


def _value_problem(key: str, value: Any, own: torch.Tensor) -> Optional[str]:
    """Why checkpoint ``value`` cannot stand for the model's tensor ``own``, or ``None``."""
    if not isinstance(value, torch.Tensor):
        return (f'{key}: checkpoint has a {type(value).__name__}, model a tensor of shape '
                f'{tuple(own.shape)}')
    if value.shape != own.shape:
        return f'{key}: checkpoint shape {tuple(value.shape)}, model shape {tuple(own.shape)}'
    if own.is_floating_point() and not value.is_floating_point():
        # An integer tensor would be cast silently and give nonsense weights.
        return f'{key}: checkpoint dtype {value.dtype}, model dtype {own.dtype}'
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        return f'{key}: {bad} of {value.numel()} values are NaN or infinite'
    return None


def _listed(title: str, items: List[str], limit: int = 10) -> List[str]:
    if not items:
        return []
    more = f'; ... ({len(items) - limit} more)' if len(items) > limit else ''
    return [f'{title} ({len(items)}): {"; ".join(items[:limit])}{more}']


def _fit_problems(own: Mapping[str, Any], given: Mapping[str, Any],
                  wanted: List[str]) -> List[str]:
    """Message lines for missing, unexpected and unusable keys (empty: the weights fit)."""
    missing = [k for k in wanted if k not in given]
    unexpected = [k for k in given if k not in own]
    bad = [p for p in (_value_problem(k, given[k], own[k]) for k in wanted if k in given) if p]
    return ([f'missing keys ({len(missing)}): {_format_keys(missing)}'] if missing else []) + \
        ([f'unexpected keys ({len(unexpected)}): {_format_keys(unexpected)}']
         if unexpected else []) + _listed('unusable values', bad)


def load_state_dict_strict(module: nn.Module,
                           state_dict: Mapping[str, Any],
                           prefixes: Optional[Sequence[str]] = ('lifter.', ),
                           source: str = 'checkpoint') -> None:
    """Load the keys of ``state_dict`` under ``prefixes`` into ``module``, strictly.

    Every key of ``module``'s state dict under ``prefixes`` must be in ``state_dict`` with the
    same shape, a floating-point dtype where the model's is one, and finite values; and
    ``state_dict`` must hold no other key under ``prefixes``; keys outside them are ignored on
    both sides (left as they are in ``module``). Floating-point values are cast to the
    module's dtype (half-precision published checkpoints).

    Args:
        module: the model (a DDP-style wrapper is unwrapped).
        state_dict: checkpoint weights, see :func:`checkpoint_state_dict`.
        prefixes: key prefixes of the submodules that must be loaded (``'lifter.'``; a name
            without the trailing dot gets one); ``None`` or ``('',)`` = every key.
        source: the checkpoint's name for messages (its path).

    Raises:
        CheckpointMismatchError: listing the missing keys, the unexpected keys and each
            unusable key (shape, integer dtype for a float tensor, NaN/inf values); when a
            residual lifter of another width / depth / input channels is the cause, also the
            exact ``--cfg-options model.lifter.width=... model.lifter.num_blocks=...
            model.lifter.in_channels=...`` that build the checkpoint's lifter (read from its
            shapes).
    """
    from mmengine.runner.checkpoint import get_state_dict, load_state_dict
    module = _bare(module)
    prefixes = tuple(p if p == '' or p.endswith('.') else p + '.' for p in (prefixes or ('', )))
    # The bare model's keys, also inside nested wrappers (distributed GAN training wraps each
    # sub-network in its own DDP).
    own = get_state_dict(module)
    given = OrderedDict((k, v) for k, v in ((_unwrapped_key(k, own), v)
                                            for k, v in state_dict.items())
                        if k.startswith(prefixes))
    problems = _fit_problems(own, given, [k for k in own if k.startswith(prefixes)])
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
