"""tools/analysis/host_check.py tells a plugin that changes its host from one that does not."""
import subprocess
import sys
import textwrap

from helpers import REPO, load_tool

host_check = load_tool('analysis', 'host_check.py')

_TESTS = textwrap.dedent('''
    import os
    import sys

    import pytest


    def test_same():
        assert 1 + 1 == 2


    def test_fails_the_same_way():
        raise ValueError(f'object at {hex(id(object()))} in {os.getcwd()}')


    @pytest.mark.skip(reason='not here')
    def test_skipped():
        pass


    def test_sees_the_plugin():
        assert 'mmunsup3d' not in sys.modules
''')


def test_host_check_reports_only_what_the_plugin_changes(tmp_path):
    checkout = tmp_path / 'host'
    (checkout / 'tests').mkdir(parents=True)
    (checkout / 'tests' / 'test_host.py').write_text(_TESTS)
    out = tmp_path / 'report.json'
    done = subprocess.run([sys.executable, 'tools/analysis/host_check.py', str(checkout),
                           'tests', '--out', str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "plain:              4 tests {'failed': 1, 'passed': 2, 'skipped': 1}" in done.stdout
    assert "with mmunsup3d:     4 tests {'failed': 2, 'passed': 1, 'skipped': 1}" in done.stdout
    assert 'outcome differs: 1' in done.stdout and 'test_sees_the_plugin' in done.stdout
    # The masked address and temporary path do not count as a changed message.
    assert 'message differs: 0' in done.stdout


def test_compare_lists_each_kind_of_difference():
    plain = {'a': ('passed', ''), 'b': ('failed', 'x'), 'c': ('passed', ''), 'd': ('error', 'y')}
    plugin = {'a': ('passed', ''), 'b': ('failed', 'z'), 'c': ('failed', 'w'), 'e': ('passed', '')}
    diff = host_check.compare(plain, plugin)
    assert diff == dict(only_plain=['d'], only_plugin=['e'], outcome=[('c', 'passed', 'failed')],
                        message=[('b', 'x', 'z')])
