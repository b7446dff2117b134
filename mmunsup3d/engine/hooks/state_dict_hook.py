"""Checkpoints hold the bare model's keys, whichever wrapper trained it."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import get_state_dict, weights_to_cpu

from mmpose.registry import HOOKS

__all__ = ['BareStateDictHook']


@HOOKS.register_module()
class BareStateDictHook(Hook):
    """Write ``state_dict`` with the keys of the unwrapped model.

    ``MMSeparateDistributedDataParallel`` (the GAN wrapper of distributed runs) replaces each
    sub-network by its own DDP wrapper, and MMEngine 0.10.7's ``Runner.save_checkpoint`` takes
    ``state_dict()`` of the outer model only, so keys come out as ``lifter.module.stem...``:
    such a checkpoint does not load into a single-process model (MMEngine's non-strict loader
    then only warns and evaluates random weights) nor resumes into a wrapped one. MMEngine's
    ``get_state_dict`` unwraps nested wrappers; its keys are those of the bare model.
    """

    priority = 'VERY_HIGH'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Replace ``checkpoint['state_dict']`` by the bare model's weights (on CPU)."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        checkpoint['state_dict'] = weights_to_cpu(get_state_dict(model))
