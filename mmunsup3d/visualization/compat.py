"""Compatibility shims that let MMPose 1.3.2's visualizers run on current Matplotlib.

MMPose's ``Pose3dLocalVisualizer`` turns its Matplotlib 3D plot into an image with
``fig.canvas.tostring_rgb()``. Matplotlib deprecated that method in 3.8 and removed it in
3.10, so with a newer Matplotlib every 3D drawing (``MMPoseInferencer(pose3d=...)`` with
``vis_out_dir`` / ``return_vis``, ``tools/test.py --show-dir``) fails with
``AttributeError: 'FigureCanvasAgg' object has no attribute 'tostring_rgb'``.
:func:`patch_tostring_rgb` puts the method back, built on ``buffer_rgba()`` (the supported
replacement), only where it is missing; a real implementation is never replaced.

It is applied when :mod:`mmunsup3d` (or this module) is imported; converted MMPose configs list
``mmunsup3d.visualization`` in ``custom_imports`` so a plain MMPose process gets it as well.
"""
import numpy as np

__all__ = ['canvas_tostring_rgb', 'patch_tostring_rgb']


def canvas_tostring_rgb(canvas) -> bytes:
    """The canvas' pixels as packed RGB bytes, like Matplotlib's removed ``tostring_rgb``.

    As with the original, the figure must have been drawn (``canvas.draw()``) first.

    Args:
        canvas: an Agg canvas (anything with ``buffer_rgba()``), e.g. ``fig.canvas``.

    Returns:
        ``H * W * 3`` bytes, row-major ``(H, W, 3)`` uint8 RGB (the alpha channel dropped).

    Raises:
        TypeError: ``canvas`` has no ``buffer_rgba()`` (not an Agg canvas).
        ValueError: the buffer is not an ``(H, W, 4)`` image.
    """
    buffer_rgba = getattr(canvas, 'buffer_rgba', None)
    if not callable(buffer_rgba):
        raise TypeError(f'tostring_rgb needs an Agg canvas with buffer_rgba(), got '
                        f'{type(canvas).__name__}')
    rgba = np.asarray(buffer_rgba())
    if rgba.ndim != 3 or rgba.shape[-1] != 4:
        raise ValueError(f'buffer_rgba() returned an array of shape {rgba.shape}, expected '
                         '(H, W, 4)')
    # ascontiguousarray: slicing off alpha leaves a strided view; tobytes() packs it anyway,
    # but be explicit that the result is tightly packed RGB, as the removed method returned.
    return np.ascontiguousarray(rgba[..., :3]).tobytes()


def patch_tostring_rgb() -> bool:
    """Define ``FigureCanvasAgg.tostring_rgb`` if this Matplotlib lacks it.

    Returns:
        ``True`` if the method was added now, ``False`` if the canvas already had one (a real
        Matplotlib < 3.10 method, or this shim from an earlier call).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    if hasattr(FigureCanvasAgg, 'tostring_rgb'):
        return False

    def tostring_rgb(self) -> bytes:
        """RGB bytes of the drawn canvas (mmunsup3d shim of the method removed in 3.10)."""
        return canvas_tostring_rgb(self)

    tostring_rgb._mmunsup3d_shim = True  # lets callers (and tests) tell the shim apart
    FigureCanvasAgg.tostring_rgb = tostring_rgb
    return True


patch_tostring_rgb()
