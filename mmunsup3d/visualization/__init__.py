"""Visualization helpers; importing this package applies :mod:`.compat`'s Matplotlib shim."""
from .compat import canvas_tostring_rgb, patch_tostring_rgb

__all__ = ['canvas_tostring_rgb', 'patch_tostring_rgb']
