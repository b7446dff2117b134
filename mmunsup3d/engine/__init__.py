from .hooks import BatchRecordHook
from .optim_wrappers import Unsup3DOptimWrapperConstructor

__all__ = ['Unsup3DOptimWrapperConstructor', 'BatchRecordHook']
