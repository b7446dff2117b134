"""Registries of the ``mmunsup3d`` scope, so that configs inherited with ``mmunsup3d::`` build.

When a config inherits ``_base_ = ['mmunsup3d::...']``, MMEngine tags every dict with a ``type``
in it with ``_scope_='mmunsup3d'`` and, when building it, imports ``mmunsup3d.registry`` and
looks for a registry of that scope. Our components register into MMPose's registries, so these
are empty children of MMPose's: a lookup falls through to MMPose's (and MMEngine's) registries.
"""
from mmengine.registry import Registry
from mmpose import registry as mmpose_registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS',
    'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'BATCH_AUGMENTS', 'OPTIMIZERS',
    'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS', 'EVALUATORS',
    'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS', 'KEYPOINT_CODECS', 'INFERENCERS'
]


def _child(parent: Registry) -> Registry:
    return Registry(parent.name, parent=parent, scope='mmunsup3d')


RUNNERS = _child(mmpose_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mmpose_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmpose_registry.LOOPS)
HOOKS = _child(mmpose_registry.HOOKS)
DATASETS = _child(mmpose_registry.DATASETS)
DATA_SAMPLERS = _child(mmpose_registry.DATA_SAMPLERS)
TRANSFORMS = _child(mmpose_registry.TRANSFORMS)
MODELS = _child(mmpose_registry.MODELS)
MODEL_WRAPPERS = _child(mmpose_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmpose_registry.WEIGHT_INITIALIZERS)
BATCH_AUGMENTS = _child(mmpose_registry.BATCH_AUGMENTS)
OPTIMIZERS = _child(mmpose_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mmpose_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmpose_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(mmpose_registry.PARAM_SCHEDULERS)
METRICS = _child(mmpose_registry.METRICS)
EVALUATORS = _child(mmpose_registry.EVALUATORS)
TASK_UTILS = _child(mmpose_registry.TASK_UTILS)
VISUALIZERS = _child(mmpose_registry.VISUALIZERS)
VISBACKENDS = _child(mmpose_registry.VISBACKENDS)
LOG_PROCESSORS = _child(mmpose_registry.LOG_PROCESSORS)
KEYPOINT_CODECS = _child(mmpose_registry.KEYPOINT_CODECS)
INFERENCERS = _child(mmpose_registry.INFERENCERS)
