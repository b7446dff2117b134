"""The Runner of the project's tools: strict ``load_from`` / ``--resume``, complete checkpoints.

MMEngine 0.10.7's ``Runner.load_checkpoint`` loads non-strictly: a checkpoint of another width
logs "size mismatch" and training goes on from random weights, exit status 0; ``--resume``
from it fails later, deep in the optimizer, naming neither the file nor the keys.
:class:`Unsup3DRunner` loads both through the project's safe loader and checks the weights
with :func:`~mmunsup3d.utils.checkpoint.load_state_dict_strict` before anything else is
restored (see :class:`Unsup3DRunner` for the policy).

``tools/train.py`` and ``tools/test.py`` build it with :func:`build_runner` for every config
(MMPose's own and converted ones included), unless a config names another ``runner_type``. The
configs do not name it themselves: MMPose 1.3.2's ``tools/train.py`` / ``tools/test.py`` ignore
``runner_type`` (they call ``Runner.from_cfg``), so a config entry would promise a check those
tools never make. What does reach them is the checkpoint hook of
``configs/_base_/default_runtime.py`` (:class:`~mmunsup3d.engine.hooks.AtomicCheckpointHook`).
"""
import re
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, get_state_dict
from torch import nn

from mmpose.registry import RUNNERS

__all__ = ['Unsup3DRunner', 'build_runner', 'build_tool_runner', 'load_training_weights',
           'require_config_keys', 'ConfigContentError']

_DEFAULT_REVISE_KEYS = [(r'^module.', '')]


class ConfigContentError(ValueError):
    """A config lacks what a tool needs (e.g. no ``model``)."""


def require_config_keys(cfg: Config, keys: Sequence[str], config: str, tool: str) -> None:
    """Raise a clear error when ``cfg`` lacks one of ``keys`` (or ``model`` has no ``type``).

    Args:
        cfg: the parsed config.
        keys: top-level keys the tool needs, e.g. ``('model', 'test_dataloader')``.
        config: the config's path, for the message.
        tool: the tool, for the message (``'tools/test.py'``).

    Raises:
        ConfigContentError: naming the config and every missing key.
    """
    missing = [k for k in keys if cfg.get(k) is None]
    model = cfg.get('model')
    if 'model' in keys and model is not None and not (isinstance(model, dict) and
                                                      'type' in model):
        missing.append('model.type')
    if missing:
        raise ConfigContentError(
            f'{config} cannot be run by {tool}: it has no {", ".join(missing)} ({tool} needs '
            f'{", ".join(keys)}). Is it a fragment (e.g. a _base_ file of a model or a '
            'dataset) rather than a full config?')


def _bare(model: nn.Module) -> nn.Module:
    while is_model_wrapper(model):
        model = model.module
    return model


def _group(key: str) -> str:
    """The top-level submodule of a state-dict key (``'lifter'`` of ``'lifter.stem.0.w'``)."""
    return key.split('.', 1)[0]


def _plan_prefixes(own: Sequence[str], given: Sequence[str], required: Sequence[str],
                   require_all: bool) -> Tuple[Tuple[str, ...], List[str]]:
    """The prefixes to load strictly, and the submodules that keep their initialisation.

    Every top-level submodule the checkpoint has weights for is loaded strictly (all its keys,
    all their shapes), as is every submodule under ``required``; with ``require_all`` every
    one is. A key outside any submodule (no dot) can only be checked with the prefix ``''``.
    """
    if '' in required or any('.' not in k for k in (*own, *given)):
        return ('', ), []
    own_groups = list(OrderedDict.fromkeys(_group(k) for k in own))
    given_groups = list(OrderedDict.fromkeys(_group(k) for k in given))
    fresh = [] if require_all else [
        g for g in own_groups
        if g not in given_groups and not any(p.startswith(g + '.') for p in required)]
    loaded = [g for g in own_groups if g not in fresh]
    loaded += [g for g in given_groups if g not in own_groups]  # unexpected: reported
    return tuple(f'{g}.' for g in loaded), fresh


def load_training_weights(model: nn.Module, state_dict: Mapping[str, Any],
                          required: Sequence[str], source: str,
                          require_all: bool = False) -> List[str]:
    """Load a checkpoint's weights for training, strictly (policy of :class:`Unsup3DRunner`).

    Args:
        model: the model (wrappers are unwrapped).
        state_dict: checkpoint weights (``checkpoint_state_dict``).
        required: prefixes that must be loaded (``inference_prefixes(model)``).
        source: the checkpoint's path, for messages.
        require_all: every key of the model must be in the checkpoint (resume).

    Returns:
        The top-level submodules the checkpoint has no weight for at all, which keep their
        fresh initialisation (always empty with ``require_all``).

    Raises:
        CheckpointMismatchError: a missing key (of a loaded or required submodule), a key the
            model does not have, or a mis-shaped key; names the file, the keys, and the
            ``--cfg-options`` that build the checkpoint's lifter.
    """
    from mmunsup3d.utils.checkpoint import load_state_dict_strict
    own = list(get_state_dict(_bare(model)))
    prefixes, fresh = _plan_prefixes(own, list(state_dict), required, require_all)
    load_state_dict_strict(model, state_dict, prefixes, source=source)
    return fresh


def _revise_keys(state: 'OrderedDict[str, Any]', revise_keys: list) -> 'OrderedDict[str, Any]':
    """MMEngine's ``revise_keys`` (regex, replacement) applied to the keys (metadata kept)."""
    if not revise_keys or revise_keys == _DEFAULT_REVISE_KEYS:
        return state  # checkpoint_state_dict already stripped ``module.``
    metadata = getattr(state, '_metadata', None)
    for pattern, repl in revise_keys:
        state = OrderedDict((re.sub(pattern, repl, k), v) for k, v in state.items())
    if metadata is not None:
        state._metadata = metadata
    return state


def _with_atomic_checkpoint_hook(hooks: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """``default_hooks`` with MMEngine's ``CheckpointHook`` replaced by ours (same options)."""
    hooks = dict(hooks) if hooks is not None else {}
    # MMEngine's own default when the config names none.
    checkpoint = hooks.get('checkpoint', dict(type='CheckpointHook', interval=1))
    if isinstance(checkpoint, dict) and checkpoint.get('type') in ('CheckpointHook',
                                                                   CheckpointHook):
        checkpoint = dict(checkpoint, type='AtomicCheckpointHook')
    hooks['checkpoint'] = checkpoint  # None stays None: MMEngine then registers none
    return hooks


@RUNNERS.register_module()
class Unsup3DRunner(Runner):
    """MMEngine's Runner with strict, safe checkpoint loading and complete checkpoints.

    Loading (``load_from`` and ``resume``) goes through the safe loaders (``weights_only=True``
    with the project's allow-list) and :func:`load_training_weights`. Policy:

    - every key the checkpoint holds must exist in the model with the same shape;
    - the submodules a test forward pass uses (the model's ``inference_modules``, the lifter)
      must be complete in the checkpoint;
    - ``load_from`` (fine-tuning): a top-level submodule the checkpoint has no weight for at
      all (the discriminators of a lifter-only, published checkpoint) keeps its fresh
      initialisation, and one log line names it; a submodule the checkpoint has only some
      weights of is an error;
    - ``resume`` (and ``load_checkpoint(strict=True)``): the checkpoint must hold every key.

    A violation raises :class:`~mmunsup3d.utils.checkpoint.CheckpointMismatchError` naming the
    file, the keys and shapes, and the ``--cfg-options`` that build the checkpoint's lifter,
    before any optimizer or scheduler state is touched. Models without ``inference_modules``
    (MMPose's ``PoseLifter``) need every key.

    A plain ``CheckpointHook`` in ``default_hooks`` is replaced by
    :class:`~mmunsup3d.engine.hooks.AtomicCheckpointHook` (same options): a checkpoint file is
    complete or absent, and with ``max_keep_ckpts`` the old one is deleted only after the new
    one is written, so an interrupted run always leaves one to resume from.
    """

    _resuming = False

    def register_default_hooks(self, hooks: Optional[Dict[str, Any]] = None) -> None:
        super().register_default_hooks(_with_atomic_checkpoint_hook(hooks))

    def resume(self, filename: str, resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location: Union[str, Callable] = 'default') -> None:
        """MMEngine's resume, with every key of the model required (see the class doc)."""
        self._resuming = True
        try:
            super().resume(filename, resume_optimizer, resume_param_scheduler, map_location)
        finally:
            self._resuming = False

    def load_checkpoint(self, filename: str, map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = _DEFAULT_REVISE_KEYS) -> Any:
        """Load ``filename`` safely and its weights strictly (see the class doc).

        Args:
            filename: local path, ``file://`` or ``http(s)://`` URL.
            map_location: as for ``torch.load``.
            strict: require every key of the model (as ``resume`` does); by default the
                ``load_from`` policy applies.
            revise_keys: MMEngine's key rewrites (``module.`` is always stripped).

        Returns:
            The loaded checkpoint (``meta``, ``message_hub``... included).
        """
        from mmunsup3d.utils import register_safe_checkpoint_loaders
        from mmunsup3d.utils.checkpoint import checkpoint_state_dict, inference_prefixes
        register_safe_checkpoint_loaders()  # idempotent; MMEngine's loaders are not safe
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        state = _revise_keys(checkpoint_state_dict(checkpoint, filename), revise_keys)
        fresh = load_training_weights(self.model, state, inference_prefixes(self.model),
                                      filename, require_all=self._resuming or strict)
        if fresh:
            self.logger.info(
                f'load_from {filename}: the checkpoint has no weights for '
                f'{", ".join(fresh)}; they keep their fresh initialisation (e.g. the '
                'discriminators when fine-tuning from a lifter-only checkpoint)')
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint


def build_runner(cfg: Config) -> Runner:
    """The Runner ``cfg.runner_type`` names, by default :class:`Unsup3DRunner`.

    A ``runner_type`` that is not an :class:`Unsup3DRunner` is honoured with a warning: its
    ``load_from`` / ``resume`` are then MMEngine's (non-strict) ones.
    """
    from mmengine.logging import print_log
    runner_type = cfg.get('runner_type') or 'Unsup3DRunner'
    runner_cls = RUNNERS.get(runner_type) if isinstance(runner_type, str) else runner_type
    if runner_cls is None:
        raise KeyError(f'runner_type "{runner_type}" is not registered in MMPose\'s RUNNERS '
                       '(is the module that defines it in custom_imports?)')
    if not issubclass(runner_cls, Unsup3DRunner):
        print_log(f'runner_type {runner_type} is not an Unsup3DRunner: load_from and --resume '
                  'are not checked strictly', logger='current', level=30)
    return runner_cls.from_cfg(cfg)


def build_tool_runner(cfg: Config) -> Runner:
    """The Runner of ``tools/train.py`` / ``tools/test.py`` for ``cfg`` (any config).

    MMPose's ``Human36mDataset`` in the dataloaders is replaced by ``SafeHuman36mDataset``
    (``cameras.pkl`` read by the restricted unpickler; logged once), then
    :func:`build_runner` builds the Runner.
    """
    from mmunsup3d.datasets import use_safe_h36m_datasets
    swapped = use_safe_h36m_datasets(cfg)
    runner = build_runner(cfg)
    if swapped:
        runner.logger.info(f'Human36mDataset -> SafeHuman36mDataset in {", ".join(swapped)} '
                           '(cameras.pkl read by the restricted unpickler)')
    return runner
