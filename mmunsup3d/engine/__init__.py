from .hooks import AtomicCheckpointHook, BatchRecordHook
from .optim_wrappers import Unsup3DOptimWrapperConstructor
from .runner import Unsup3DRunner, build_runner

__all__ = ['Unsup3DOptimWrapperConstructor', 'BatchRecordHook', 'AtomicCheckpointHook',
           'Unsup3DRunner', 'build_runner']
