"""Summarise runs of ``tools/misc/run_ablation_seeds.sh`` / ``run_motion_folds.sh`` (mm).

Usage::

    python tools/misc/summarize_ablation.py [ROOT ...] [--archive DEST]

Each ``ROOT`` (default ``work_dirs/ablation``) holds one folder per run: ``<name>_seed<S>``
(tail split), ``<name>_fold<F>_seed<S>`` (leave-motion-out fold ``F``) or ``<name>_fold<F>``
(a parameter-free baseline), each with a ``metrics.json`` from ``tools/test.py --out``. Prints a
Markdown table, one row per name and protocol: per-run N-MPJPE / P-MPJPE / MPJPE with their
mean ± sample standard deviation, how many runs are depth-mirrored by the 3D diagnostic
(``mirror.json`` of ``tools/analysis/depth_mirror_check.py``; ``?`` where a run has none) and
the label-free chirality rate (``chirality_rate`` of the ``ChiralityRate`` metric: fraction of
mirror-handed test predictions), per run in percent.

``--archive DEST`` also copies each run's small result files (``metrics.json``,
``mirror.json``, ``run_info.txt``) to ``DEST/<run>/``, so that the numbers a README quotes stay
with the repository; an archive folder can be passed as a ``ROOT`` later.
"""
import argparse
import json
import math
import os
import os.path as osp
import re
import shutil
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

METRICS = ('N-MPJPE', 'P-MPJPE', 'MPJPE')
RESULT_FILES = ('metrics.json', 'mirror.json', 'run_info.txt')
_RUN = re.compile(r'(?P<name>.+?)(?:_fold(?P<fold>\d+))?(?:_seed(?P<seed>\d+))?')

Row = Dict[str, float]


def parse_run(folder: str) -> Optional[Tuple[str, str, Tuple[int, int]]]:
    """``'tdisc_fold2_seed0'`` -> ``('tdisc', 'leave-motion-out', (2, 0))``; ``None`` if the
    folder name has neither a seed nor a fold."""
    match = _RUN.fullmatch(folder)
    if match is None or (match['fold'] is None and match['seed'] is None):
        return None
    protocol = 'tail' if match['fold'] is None else 'leave-motion-out'
    return match['name'], protocol, (int(match['fold'] or -1), int(match['seed'] or -1))


def read_run(path: str) -> Row:
    """Millimetre metrics, ``mirrored`` (0/1) and ``chirality`` (%) of one run folder."""
    with open(osp.join(path, 'metrics.json'), encoding='utf-8') as f:
        metrics = json.load(f)
    row = {k: 1000.0 * float(metrics[k]) for k in METRICS if k in metrics}
    if 'chirality_rate' in metrics:
        row['chirality'] = 100.0 * float(metrics['chirality_rate'])
    mirror = osp.join(path, 'mirror.json')
    if osp.isfile(mirror):
        with open(mirror, encoding='utf-8') as f:
            row['mirrored'] = float(json.load(f)['mirrored'])
    return row


def collect(roots: List[str]) -> Dict[Tuple[str, str], Dict[Tuple[int, int], Row]]:
    """``{(name, protocol): {(fold, seed): row}}`` over every run folder of ``roots``."""
    runs: Dict[Tuple[str, str], Dict[Tuple[int, int], Row]] = defaultdict(dict)
    for root in roots:
        for entry in sorted(os.listdir(root)):
            key = parse_run(entry)
            if key is None or not osp.isfile(osp.join(root, entry, 'metrics.json')):
                continue
            runs[key[:2]][key[2]] = read_run(osp.join(root, entry))
    return runs


def mean_std(values: List[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def fmt(values: List[float]) -> str:
    """``'a / b / c (**mean ± std**)'``; a single run is just its value."""
    if len(values) == 1:
        return f'{values[0]:.1f}'
    mean, std = mean_std(values)
    return ' / '.join(f'{v:.1f}' for v in values) + f' (**{mean:.1f} ± {std:.1f}**)'


def label(protocol: str, key: Tuple[int, int]) -> str:
    fold, seed = key
    if protocol == 'tail':
        return f's{seed}'
    return f'f{fold}' + (f's{seed}' if seed >= 0 else '')


def table(runs: Dict[Tuple[str, str], Dict[Tuple[int, int], Row]]) -> str:
    lines = ['| run | protocol | runs | ' + ' | '.join(METRICS) +
             ' | mirrored (3D) | chirality rate % |',
             '|---|---|---|' + '---|' * len(METRICS) + '---|---|']
    for (name, protocol), entries in runs.items():
        order = sorted(entries)
        rows = [entries[k] for k in order]
        cells = [fmt([r[m] for r in rows]) if all(m in r for r in rows) else '?' for m in METRICS]
        flags = [r.get('mirrored') for r in rows]
        cells.append('?' if None in flags else f'{int(sum(flags))}/{len(flags)}')
        rates = [r.get('chirality') for r in rows]
        cells.append('?' if None in rates else ' / '.join(f'{v:.1f}' for v in rates))
        lines.append(f'| {name} | {protocol} | {", ".join(label(protocol, k) for k in order)}'
                     ' | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def archive(roots: List[str], dest: str) -> int:
    """Copy each run's small result files to ``dest/<run>/``; returns the number of runs."""
    count = 0
    for root in roots:
        for entry in sorted(os.listdir(root)):
            src = osp.join(root, entry)
            if parse_run(entry) is None or not osp.isfile(osp.join(src, 'metrics.json')):
                continue
            if osp.abspath(src) == osp.abspath(osp.join(dest, entry)):
                continue
            os.makedirs(osp.join(dest, entry), exist_ok=True)
            for name in RESULT_FILES:
                if osp.isfile(osp.join(src, name)):
                    shutil.copyfile(osp.join(src, name), osp.join(dest, entry, name))
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('roots', nargs='*', default=['work_dirs/ablation'])
    parser.add_argument('--archive', help='copy the small result files of every run here')
    args = parser.parse_args()
    missing = [r for r in args.roots if not osp.isdir(r)]
    if missing:
        parser.error(f'not a folder: {missing}')
    print(table(collect(args.roots)))
    if args.archive:
        print(f'archived {archive(args.roots, args.archive)} run(s) to {args.archive}')


if __name__ == '__main__':
    main()
