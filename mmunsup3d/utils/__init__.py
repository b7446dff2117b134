from .checkpoint import (CheckpointMismatchError, UnsafeCheckpointError, load_checkpoint_strict,
                         load_state_dict_strict, safe_torch_load)
from .checkpoint_globals import checkpoint_safe_globals
from .host_loaders import register_safe_checkpoint_loaders
from .output_dir import OutputDir, OutputDirError
from .safe_pickle import UnsafePickleError, load_npy, npz_array, safe_load, safe_loads
from .setup_env import register_all_modules, register_config_scope

__all__ = [
    'register_all_modules', 'register_config_scope',
    'checkpoint_safe_globals', 'safe_torch_load', 'UnsafeCheckpointError',
    'CheckpointMismatchError', 'load_checkpoint_strict', 'load_state_dict_strict',
    'register_safe_checkpoint_loaders', 'UnsafePickleError', 'load_npy', 'npz_array',
    'safe_load', 'safe_loads', 'OutputDir', 'OutputDirError'
]
