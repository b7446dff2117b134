"""Formatting evaluation results: MMPose ``MPJPE`` (metres) as millimetre tables, and the
label-free ``ChiralityRate`` as one line."""
from typing import Dict, List

__all__ = ['format_mpjpe_results', 'format_chirality_rate']

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



def format_chirality_rate(metrics: Dict[str, float]) -> str:
    """Render the ``ChiralityRate`` result as one line, in percent.

    Args:
        metrics: evaluator results; ``chirality_rate`` is a fraction in ``[0, 1]``.

    Returns:
        ``'chirality rate (mirror-handed poses, label-free): 3.1 %'``, or ``''`` when
        ``metrics`` has no ``chirality_rate`` (configs without the metric print nothing).
    """
    if 'chirality_rate' not in metrics:
        return ''
    return f'chirality rate (mirror-handed poses, label-free): ' \
           f'{100.0 * float(metrics["chirality_rate"]):.1f} %'
