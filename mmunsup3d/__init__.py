"""mmunsup3d: unsupervised 3D human pose lifting with geometric self-supervision for MMPose."""
from .version import __version__
from .utils.host_loaders import register_safe_checkpoint_loaders
from .utils.setup_env import register_config_scope

# MMEngine's checkpoint loaders, made safe (weights_only=True + allow-list, hash-checked URLs).
register_safe_checkpoint_loaders()
# `_base_ = ['mmunsup3d::...']` is resolved when a config is parsed, before custom_imports run.
register_config_scope()

# Importing the package registers every component into MMPose's registries, so
# ``custom_imports=dict(imports=['mmunsup3d'])`` is enough in a config.
from . import apis, codecs, datasets, engine, evaluation, models, registry, utils  # noqa: E402,F401
from . import visualization  # noqa: E402,F401  (Matplotlib >= 3.10 shim for MMPose's visualizers)

__all__ = [
    '__version__', 'apis', 'codecs', 'datasets', 'engine', 'evaluation', 'models', 'registry',
    'utils'
]
