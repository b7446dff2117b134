"""The model zoo API (:mod:`mmunsup3d.utils.zoo`), re-exported for ``mmunsup3d.apis`` users."""
from ..utils.zoo import *  # noqa: F401,F403
from ..utils.zoo import __all__  # noqa: F401
