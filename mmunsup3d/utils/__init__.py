from .checkpoint import (UnsafeCheckpointError, allow_checkpoint_globals,
                         checkpoint_safe_globals, safe_torch_load)
from .setup_env import register_all_modules

__all__ = [
    'register_all_modules', 'allow_checkpoint_globals', 'checkpoint_safe_globals',
    'safe_torch_load', 'UnsafeCheckpointError'
]
