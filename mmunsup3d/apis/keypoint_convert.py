"""Kept for existing imports: the conversion lives in :mod:`mmunsup3d.structures`."""
from ..structures.keypoint_convert import *  # noqa: F401,F403
from ..structures.keypoint_convert import __all__  # noqa: F401
from ..structures.skeleton import *  # noqa: F401,F403
