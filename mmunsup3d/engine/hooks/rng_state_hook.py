"""Store every random-number state in each checkpoint and restore it on ``--resume``.

With the states restored, a run that is killed after the checkpoint of epoch ``k`` and resumed
from it ends with bit-identical weights to an uninterrupted run of the same seed (same machine,
same thread count): dropout masks, flips, random cameras, keypoint noise and the extra-2D rows
are drawn from the same streams.

What is stored (``checkpoint['meta']['rng_state']``, only types that ``torch.load(
weights_only=True)`` with the mmunsup3d allow-list admits: tensors, lists, tuples, dicts, ints,
floats, strings):

- ``torch``: the CPU generator (dropout, cameras, flips, noise, DataLoader worker seeds);
- ``torch_cuda``: one state per CUDA device, if CUDA has been initialised;
- ``numpy``: the legacy global ``np.random`` state (its uint32 key as a list of ints: uint32
  arrays are not on the allow-list);
- ``python``: ``random.getstate()``;
- ``samplers``: the ``seed`` of the training sampler(s) (``DefaultSampler`` shuffles with
  ``seed + epoch``, so epoch-level resume needs only the seed; MMEngine builds the sampler
  before it re-seeds from the checkpoint, which matters when ``randomness.seed`` is ``None``);
- ``loader_generator``: the training DataLoader's own ``torch.Generator``, if it has one;
- ``datasets`` / ``modules``: the states of datasets (walked through ``dataset``, ``datasets``,
  ``extra``... attributes) and model sub-modules that implement ``get_rng_state()`` /
  ``set_rng_state(state)`` (e.g. :class:`~mmunsup3d.datasets.WithExtra2DDataset`).

When: the checkpoint of epoch ``k`` is written in ``after_train_epoch``; the uninterrupted
run may then validate before epoch ``k + 1`` starts, and validation draws (the validation
DataLoader takes its base seed from the torch generator). So validation inside training runs
between a snapshot and a restore of the process-wide generators: it leaves the training
streams where the checkpoint recorded them (a side effect worth having on its own: training
results do not depend on ``val_interval`` or ``--no-validate``). On resume the states are
restored at the start of the first epoch, which is after MMEngine's ``Runner.resume`` has
re-seeded from the checkpoint's seed and after everything else that draws while the runner
starts (weight initialisation). The hook itself never draws a random number.

Limits: iteration-based loops and mid-epoch checkpoints are not exact; with ``num_workers > 0`` and
``persistent_workers=True`` the workers keep their streams across epochs, which a fresh process
cannot reproduce (a warning says so); in distributed runs rank 0's states are stored, and they
are not restored with ``randomness.diff_rank_seed=True`` (each rank has its own stream).
"""
import random
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop
from torch.utils.data import Dataset

from mmpose.registry import HOOKS

__all__ = ['RNGStateHook', 'capture_rng_state', 'restore_rng_state']

STATE_KEY = 'rng_state'
_VERSION = 1
# Attributes through which dataset wrappers hold the datasets they wrap (MMEngine's
# ConcatDataset/RepeatDataset/ClassBalancedDataset, our WithExtra2DDataset).
_CHILD_DATASET_ATTRS = ('dataset', 'datasets', 'extra')


def _has_rng_protocol(obj: Any) -> bool:
    return callable(getattr(obj, 'get_rng_state', None)) and \
        callable(getattr(obj, 'set_rng_state', None))


def _iter_datasets(dataset: Any, path: str = 'dataset') -> Iterator[Tuple[str, Any]]:
    """Yield ``(path, dataset)`` for ``dataset`` and the datasets it wraps (depth first)."""
    seen = set()
    stack = [(path, dataset)]
    while stack:
        name, obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield name, obj
        children = []
        for attr in _CHILD_DATASET_ATTRS:
            value = getattr(obj, attr, None)
            if isinstance(value, Dataset):
                children.append((f'{name}.{attr}', value))
            elif isinstance(value, (list, tuple)):
                children += [(f'{name}.{attr}.{i}', v) for i, v in enumerate(value)
                             if isinstance(v, Dataset)]
        stack += reversed(children)


def _samplers(loader: Any) -> Iterator[Tuple[str, Any]]:
    """The training loader's samplers that carry an integer ``seed``."""
    seen = set()
    batch_sampler = getattr(loader, 'batch_sampler', None)
    for name, obj in (('sampler', getattr(loader, 'sampler', None)),
                      ('batch_sampler', batch_sampler),
                      ('batch_sampler.sampler', getattr(batch_sampler, 'sampler', None))):
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(getattr(obj, 'seed', None), (int, np.integer)):
            yield name, obj


def _unwrap(model: Any) -> Any:
    return model.module if is_model_wrapper(model) else model


def _train_loader(runner: Any) -> Any:
    """The runner's training DataLoader, or ``None`` while its train loop is not built.

    Not ``runner.train_dataloader``: on an unbuilt loop that property would build the loop
    (and its dataloader) as a side effect of merely saving a checkpoint.
    """
    loop = getattr(runner, '_train_loop', None)
    return loop.dataloader if isinstance(loop, BaseLoop) else None


def capture_rng_state(runner: Any = None) -> Dict[str, Any]:
    """Snapshot every random-number state (without drawing from any of them).

    Args:
        runner: the MMEngine runner whose training dataloader (sampler, dataset tree) and model
            are included; ``None`` captures only the process-wide generators.

    Returns:
        A dict of allow-listed types (see the module docstring).
    """
    np_state = np.random.get_state(legacy=True)
    state: Dict[str, Any] = dict(
        version=_VERSION,
        torch=torch.get_rng_state(),
        # uint32 arrays are not on the checkpoint allow-list; their values fit Python ints.
        numpy=(np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]),
               float(np_state[4])),
        python=random.getstate(),
    )
    # Reading the CUDA states would initialise CUDA; an uninitialised CUDA has drawn nothing.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['torch_cuda'] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    if runner is None:
        return state
    loader = _train_loader(runner)
    if loader is not None:
        state.update(_loader_states(loader))
    state['modules'] = {name: m.get_rng_state()
                        for name, m in _unwrap(runner.model).named_modules()
                        if _has_rng_protocol(m)}
    return state


def _loader_states(loader: Any) -> Dict[str, Any]:
    """States of a training DataLoader's samplers, own generator and dataset tree."""
    state: Dict[str, Any] = {}
    state['samplers'] = {name: int(s.seed) for name, s in _samplers(loader)}
    generator = getattr(loader, 'generator', None)
    if isinstance(generator, torch.Generator):
        state['loader_generator'] = generator.get_state()
    state['datasets'] = {name: ds.get_rng_state()
                         for name, ds in _iter_datasets(loader.dataset) if _has_rng_protocol(ds)}
    return state


def restore_rng_state(state: Dict[str, Any], runner: Any = None,
                      global_generators: bool = True) -> List[str]:
    """Put back the states :func:`capture_rng_state` returned.

    Args:
        state: a captured state (possibly loaded from a checkpoint, tensors on any device).
        runner: restore the runner's sampler / dataset / module states too (they must be the
            same objects as when captured: the same paths must exist).
        global_generators: restore torch (CPU, CUDA), NumPy and Python's ``random``.

    Returns:
        Warnings about states that could not be restored (e.g. a different CUDA device count).

    Raises:
        KeyError: ``state`` names a dataset, module or sampler the runner does not have.
        ValueError: ``state`` has an unknown format version.
    """
    if state.get('version') != _VERSION:
        raise ValueError(f'RNG state has format version {state.get("version")!r}; this '
                         f'mmunsup3d reads version {_VERSION}')
    warnings: List[str] = []
    if global_generators:
        torch.set_rng_state(state['torch'].cpu())
        name, key, pos, has_gauss, cached = state['numpy']
        np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, cached))
        random.setstate(_as_python_random_state(state['python']))
        cuda = state.get('torch_cuda')
        if cuda is not None and torch.cuda.is_available():
            if len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
            else:
                warnings.append(f'the checkpoint holds {len(cuda)} CUDA RNG state(s) but '
                                f'{torch.cuda.device_count()} CUDA device(s) are visible; '
                                'CUDA RNG states not restored')
    if runner is None:
        return warnings
    loader = _train_loader(runner)
    if loader is None:
        if any(k in state for k in ('samplers', 'loader_generator', 'datasets')):
            raise KeyError('RNG state: it holds training dataloader states but the runner '
                           'has no built train loop to restore them into')
    else:
        _restore_loader_states(state, loader)
    modules = dict(_unwrap(runner.model).named_modules())
    for name, m_state in state.get('modules', {}).items():
        if name not in modules or not _has_rng_protocol(modules[name]):
            raise KeyError(f'RNG state: the model has no sub-module "{name}" with '
                           'get_rng_state/set_rng_state')
        modules[name].set_rng_state(m_state)
    return warnings


def _restore_loader_states(state: Dict[str, Any], loader: Any) -> None:
    samplers = dict(_samplers(loader))
    for name, seed in state.get('samplers', {}).items():
        if name not in samplers:
            raise KeyError(f'RNG state: the training dataloader has no "{name}" with a seed')
        samplers[name].seed = int(seed)
    if 'loader_generator' in state:
        generator = getattr(loader, 'generator', None)
        if not isinstance(generator, torch.Generator):
            raise KeyError('RNG state: the training dataloader has no torch.Generator to '
                           'restore "loader_generator" into')
        generator.set_state(state['loader_generator'].cpu())
    datasets = dict(_iter_datasets(loader.dataset))
    for name, ds_state in state.get('datasets', {}).items():
        if name not in datasets or not _has_rng_protocol(datasets[name]):
            raise KeyError(f'RNG state: the training dataset has no "{name}" with '
                           'get_rng_state/set_rng_state')
        datasets[name].set_rng_state(ds_state)


def _as_python_random_state(state: Any) -> tuple:
    """``random.setstate`` wants tuples; keep it working if a loader returned lists."""
    version, internal, gauss = state
    return version, tuple(int(v) for v in internal), gauss


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the random-number states in every checkpoint; restore them on resume.

    Enabled for every mmunsup3d config by ``configs/_base_/default_runtime.py``
    (``default_hooks.rng_state``). See the module docstring for what is stored, when, and the
    limits of exactness.
    """

    # First in before_train_epoch: the state is captured / restored before any other hook of
    # the new epoch could draw.
    priority = 'HIGHEST'

    def __init__(self) -> None:
        # From after_load_checkpoint until the first epoch starts: (meta epoch, iter, state).
        self._loaded: Optional[Tuple[Any, Any, Optional[Dict[str, Any]]]] = None
        # Process-wide generator states while a validation inside training runs.
        self._before_val: Optional[Dict[str, Any]] = None
        self._warned_workers = False

    # ------------------------------------------------------------------ saving
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add the current states to ``checkpoint['meta']['rng_state']``."""
        meta = checkpoint.setdefault('meta', {})
        state = capture_rng_state(runner)
        state['epoch'] = meta.get('epoch')
        state['iter'] = meta.get('iter')
        meta[STATE_KEY] = state

    def before_val_epoch(self, runner) -> None:
        """Snapshot the process-wide generators before a validation inside training."""
        train_loop = getattr(runner, '_train_loop', None)
        if isinstance(train_loop, BaseLoop):  # built: validation runs inside training
            self._before_val = capture_rng_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        """Put the generators back: validation does not move the training streams."""
        if self._before_val is not None:
            restore_rng_state(self._before_val)
            self._before_val = None

    # ------------------------------------------------------------------ loading
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the stored states until the first epoch starts (MMEngine re-seeds after this).

        Nothing is restored here: ``Runner.resume`` calls ``set_randomness`` after loading when
        the checkpoint's seed differs from the config's, and a ``load_from`` (not a resume)
        must not change the new run's streams; :meth:`before_train_epoch` decides.
        """
        meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
        self._loaded = (meta.get('epoch'), meta.get('iter'), meta.get(STATE_KEY))

    def before_train(self, runner) -> None:
        """Warn once where DataLoader workers make exact resume impossible."""
        loader = runner.train_dataloader
        if not self._warned_workers and getattr(loader, 'num_workers', 0) > 0 and \
                getattr(loader, 'persistent_workers', False):
            self._warned_workers = True
            runner.logger.warning(
                'RNGStateHook: persistent DataLoader workers keep their random streams across '
                'epochs; a resumed run restarts them, so it is not bit-identical to an '
                'uninterrupted one (set persistent_workers=False for exact resume)')

    def before_train_epoch(self, runner) -> None:
        """Restore the states after a resume."""
        if self._loaded is None:
            return
        epoch, it, state = self._loaded
        self._loaded = None
        # Runner.resume sets the loop's epoch and iter from the checkpoint's meta; a
        # load_from (fine-tuning from weights) leaves them at 0, and must keep its own streams.
        if (epoch, it) != (runner.epoch, runner.iter):
            return
        if state is None:
            runner.logger.warning(
                'RNGStateHook: the resumed checkpoint stores no random-number states (saved '
                'without this hook); the run continues from freshly seeded generators and '
                'will not be bit-identical to an uninterrupted run')
            return
        global_generators = True
        if get_world_size() > 1 and runner.cfg.get('randomness', {}).get('diff_rank_seed'):
            # The checkpoint holds rank 0's streams only; every rank has its own.
            global_generators = False
            runner.logger.warning(
                'RNGStateHook: diff_rank_seed=True in a distributed run: the global generators '
                'are not restored (the checkpoint stores rank 0 only)')
        try:
            warnings = restore_rng_state(state, runner, global_generators=global_generators)
        except (KeyError, ValueError) as e:
            # A config changed since the checkpoint (e.g. another dataset wrapper): exactness
            # is lost anyway, and the resumed training itself is still valid.
            runner.logger.warning(f'RNGStateHook: could not restore all random-number states '
                                  f'of epoch {epoch}; the resumed run will not be '
                                  f'bit-identical: {e}')
            return
        for msg in warnings:
            runner.logger.warning(f'RNGStateHook: {msg}')
        runner.logger.info(f'RNGStateHook: restored the random-number states of epoch {epoch}')
