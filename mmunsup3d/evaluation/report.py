"""Formatting MMPose ``MPJPE`` results (metres) as millimetre tables."""
from typing import Dict, List

__all__ = ['format_mpjpe_results']

_MODES = ('N-MPJPE', 'P-MPJPE', 'MPJPE')


def format_mpjpe_results(metrics: Dict[str, float], unit_scale: float = 1000.0) -> str:
    """Render ``MPJPE`` metric outputs (``N-MPJPE``, ``P-MPJPE_walk``...) as a mm table.

    Args:
        metrics: the dict returned by ``runner.test()`` / the evaluator (values in metres, as
            MMPose computes them on metre-valued ``lifting_target``).
        unit_scale: factor to millimetres.

    Returns:
        A text table: one row per action and an ``ALL`` row, one column per mode present.
    """
    modes = [m for m in _MODES if m in metrics]
    if not modes:
        raise KeyError(f'No MPJPE results among {sorted(metrics)}')
    actions: List[str] = sorted({
        k.split('_', 1)[1]
        for k in metrics if '_' in k and k.split('_', 1)[0] in modes
    })
    header = f"{'action':<16}" + ''.join(f'{m + " (mm)":>16}' for m in modes)
    lines = [header, '-' * len(header)]
    for act in actions:
        vals = [metrics.get(f'{m}_{act}') for m in modes]
        lines.append(f'{act:<16}' + ''.join(
            f'{v * unit_scale:>16.1f}' if v is not None else f"{'-':>16}" for v in vals))
    lines.append(f"{'ALL':<16}" + ''.join(f'{metrics[m] * unit_scale:>16.1f}' for m in modes))
    return '\n'.join(lines)

