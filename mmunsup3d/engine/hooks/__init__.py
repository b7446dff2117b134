"""Engine hooks (registered in MMPose's ``HOOKS`` registry)."""
from .batch_record_hook import BatchRecordHook

__all__ = ['BatchRecordHook']
