"""Does ``import mmunsup3d`` change how MMPose behaves? Run MMPose's own tests both ways.

``python tools/analysis/host_check.py MMPOSE_CHECKOUT [TEST_PATH ...] [--out report.json]``

``MMPOSE_CHECKOUT`` is a checkout of MMPose's repository at the installed version (its
``tests/`` and the ``configs/`` they read; nothing of it is vendored here). The selected tests
run twice in fresh processes: plainly, and with ``import mmunsup3d`` before pytest starts (what
``custom_imports=dict(imports=['mmunsup3d'])`` does in a config). Every test's outcome
(passed / failed / error / skipped) and the first line of its message are compared, with
memory addresses and temporary paths masked. The default selection needs no network beyond
what fails the same way offline in both runs.

Prints the outcome counts of both runs and every test whose outcome or message differs; exits
1 when anything differs, 0 otherwise.
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from typing import Dict, List, Tuple

DEFAULT_TESTS = ('tests/test_apis', 'tests/test_codecs', 'tests/test_evaluation',
                 'tests/test_models/test_pose_estimators', 'tests/test_engine',
                 'tests/test_visualization', 'tests/test_structures',
                 'tests/test_datasets/test_transforms')
_BOOT = ('import sys\n'
         'if sys.argv.pop(1) == "plugin":\n'
         '    import mmunsup3d  # noqa: F401\n'
         'import pytest\n'
         'sys.exit(pytest.main(sys.argv[1:]))\n')
_MASKS = ((re.compile(r'0x[0-9a-fA-F]+'), '0x…'),
          (re.compile(r'/tmp/[^\s\'"]+'), '/tmp/…'),
          (re.compile(r'\d+\.\d+s\b'), '…s'))

Outcome = Tuple[str, str]  # (outcome, masked first message line)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkout', help="checkout of MMPose's repository (tests/, configs/)")
    parser.add_argument('tests', nargs='*', default=list(DEFAULT_TESTS),
                        help='test paths inside the checkout (default: %(default)s)')
    parser.add_argument('--out', help='write both runs and the differences to this JSON file')
    parser.add_argument('--timeout', type=int, default=3600, help='seconds per run')
    return parser.parse_args()


def _masked(text: str) -> str:
    line = (text or '').strip().splitlines()[0] if (text or '').strip() else ''
    for pattern, repl in _MASKS:
        line = pattern.sub(repl, line)
    return line[:300]


def read_junit(path: str) -> Dict[str, Outcome]:
    """``{test id: (outcome, message)}`` from a pytest junit XML file."""
    results: Dict[str, Outcome] = {}
    for case in ET.parse(path).getroot().iter('testcase'):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        outcome, message = 'passed', ''
        for kind in ('failure', 'error', 'skipped'):
            found = case.find(kind)
            if found is not None:
                outcome = 'failed' if kind == 'failure' else kind
                message = found.get('message') or found.text or ''
                break
        results[test_id] = (outcome, _masked(message))
    return results


def run_tests(checkout: str, tests: List[str], mode: str, timeout: int) -> Dict[str, Outcome]:
    """Run ``tests`` in a fresh interpreter (``mode``: ``plain`` or ``plugin``)."""
    with tempfile.TemporaryDirectory() as tmp:
        junit = osp.join(tmp, 'junit.xml')
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
        cmd = [sys.executable, '-c', _BOOT, mode, '-q', '-p', 'no:cacheprovider',
               '--continue-on-collection-errors', f'--junitxml={junit}', *tests]
        done = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True,
                              timeout=timeout)
        if not osp.isfile(junit):
            raise RuntimeError(f'the {mode} run wrote no report (exit {done.returncode}):\n'
                               f'{done.stdout[-2000:]}\n{done.stderr[-2000:]}')
        return read_junit(junit)


def compare(plain: Dict[str, Outcome], plugin: Dict[str, Outcome]) -> Dict[str, list]:
    """Tests only in one run, with another outcome, or with another message."""
    both = sorted(set(plain) & set(plugin))
    return dict(
        only_plain=sorted(set(plain) - set(plugin)),
        only_plugin=sorted(set(plugin) - set(plain)),
        outcome=[(t, plain[t][0], plugin[t][0]) for t in both if plain[t][0] != plugin[t][0]],
        message=[(t, plain[t][1], plugin[t][1]) for t in both
                 if plain[t][0] == plugin[t][0] and plain[t][1] != plugin[t][1]])


def counts(results: Dict[str, Outcome]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for outcome, _ in results.values():
        out[outcome] = out.get(outcome, 0) + 1
    return dict(sorted(out.items()))


def report(plain: Dict[str, Outcome], plugin: Dict[str, Outcome], diff: Dict[str, list]) -> str:
    lines = [f'plain:              {len(plain)} tests {counts(plain)}',
             f'with mmunsup3d:     {len(plugin)} tests {counts(plugin)}']
    for key, title in (('only_plain', 'only in the plain run'),
                       ('only_plugin', 'only in the run with mmunsup3d'),
                       ('outcome', 'outcome differs'), ('message', 'message differs')):
        lines.append(f'{title}: {len(diff[key])}')
        lines += [f'  {row}' for row in diff[key][:50]]
    return '\n'.join(lines)


def main() -> int:
    args = parse_args()
    checkout = osp.abspath(args.checkout)
    if not osp.isdir(osp.join(checkout, 'tests')):
        sys.exit(f'host_check.py: error: {checkout} has no tests/ folder (an MMPose checkout?)')
    plain = run_tests(checkout, args.tests, 'plain', args.timeout)
    plugin = run_tests(checkout, args.tests, 'plugin', args.timeout)
    diff = compare(plain, plugin)
    print(report(plain, plugin, diff))
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(dict(plain=plain, plugin=plugin, diff=diff), f, indent=1)
    return 1 if any(diff.values()) else 0


if __name__ == '__main__':
    sys.exit(main())
