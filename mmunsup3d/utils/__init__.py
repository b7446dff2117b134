from .checkpoint import (UnsafeCheckpointError, allow_checkpoint_globals,
                         checkpoint_safe_globals, safe_torch_load)
from .setup_env import register_all_modules, register_config_scope

__all__ = [
    'register_all_modules', 'register_config_scope', 'allow_checkpoint_globals', 'checkpoint_safe_globals',
    'safe_torch_load', 'UnsafeCheckpointError'
]
