"""Engine hooks (registered in MMPose's ``HOOKS`` registry)."""
from .batch_record_hook import BatchRecordHook
from .checkpoint_hook import AtomicCheckpointHook
from .rng_state_hook import RNGStateHook
from .state_dict_hook import BareStateDictHook

__all__ = ['BatchRecordHook', 'RNGStateHook', 'BareStateDictHook', 'AtomicCheckpointHook']
