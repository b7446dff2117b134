"""mmunsup3d: unsupervised 3D human pose lifting with geometric self-supervision for MMPose."""
from .version import __version__
from .utils.checkpoint import allow_checkpoint_globals

allow_checkpoint_globals()

# Importing the package registers every component into MMPose's registries, so
# ``custom_imports=dict(imports=['mmunsup3d'])`` is enough in a config.
from . import apis, datasets, engine, evaluation, models, utils  # noqa: E402,F401

__all__ = ['__version__', 'apis', 'datasets', 'engine', 'evaluation', 'models', 'utils']
