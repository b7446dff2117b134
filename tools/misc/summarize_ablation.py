"""Summarise seed runs written by ``tools/misc/run_ablation_seeds.sh`` (mm, mean ± spread).

Usage: ``python tools/misc/summarize_ablation.py [work_dirs/ablation]``. For each run name
(``<name>_seed<S>`` folders with a ``metrics.json``) prints per-seed N-MPJPE / P-MPJPE / MPJPE,
their mean and the spread as half the max-min range, as a Markdown table; with a
``mirror.json`` (``tools/analysis/depth_mirror_check.py``) in every folder, also how many seeds
converged to the depth-mirrored solution.
"""
import json
import os
import os.path as osp
import re
import sys
from collections import defaultdict
from typing import Dict, List

METRICS = ('N-MPJPE', 'P-MPJPE', 'MPJPE')


def collect(root: str) -> Dict[str, Dict[int, Dict[str, float]]]:
    runs: Dict[str, Dict[int, Dict[str, float]]] = defaultdict(dict)
    for entry in sorted(os.listdir(root)):
        match = re.fullmatch(r'(.+)_seed(\d+)', entry)
        path = osp.join(root, entry, 'metrics.json')
        if not match or not osp.isfile(path):
            continue
        with open(path) as f:
            metrics = json.load(f)
        row = {k: 1000.0 * float(metrics[k]) for k in METRICS if k in metrics}
        mirror = osp.join(root, entry, 'mirror.json')
        if osp.isfile(mirror):
            with open(mirror) as f:
                row['mirrored'] = float(json.load(f)['mirrored'])
        runs[match.group(1)][int(match.group(2))] = row
    return runs


def fmt(values: List[float]) -> str:
    per_seed = ' / '.join(f'{v:.1f}' for v in values)
    mean = sum(values) / len(values)
    spread = (max(values) - min(values)) / 2
    return f'{per_seed} (**{mean:.1f} ± {spread:.1f}**)'


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else 'work_dirs/ablation'
    runs = collect(root)
    print('| run | seeds | ' + ' | '.join(METRICS) + ' | mirrored |')
    print('|---|---|' + '---|' * len(METRICS) + '---|')
    for name, seeds in runs.items():
        order = sorted(seeds)
        cells = [fmt([seeds[s][m] for s in order]) for m in METRICS]
        flags = [seeds[s].get('mirrored') for s in order]
        cells.append('?' if None in flags else f'{int(sum(flags))}/{len(flags)}')
        print(f'| {name} | {", ".join(map(str, order))} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
