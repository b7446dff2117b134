"""mmunsup3d: unsupervised 3D human pose lifting with geometric self-supervision for MMPose."""
from .version import __version__
from .utils.checkpoint import allow_checkpoint_globals
from .utils.setup_env import register_config_scope

allow_checkpoint_globals()
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
