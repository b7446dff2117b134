"""tools/misc/run_ablation_seeds.sh: what it runs and what it records for each seed."""
import os
import os.path as osp
import subprocess

from helpers import REPO

SCRIPT = osp.join(REPO, 'tools', 'misc', 'run_ablation_seeds.sh')

# Stands in for the Python interpreter: logs its arguments, "trains" by writing a checkpoint
# into --work-dir and "tests" by printing an ALL row.
STUB = r'''#!/usr/bin/env bash
echo "$*" >> {log}
args=("$@")
for i in "${{!args[@]}}"; do
  [ "${{args[$i]}}" = --work-dir ] && wd=${{args[$((i+1))]}}
done
case $1 in
  tools/train.py) touch "$wd/epoch_7.pth" ;;
  tools/test.py) echo "ALL   101.0   80.0   104.0" ;;
esac
'''


def _cpuinfo(key: str) -> str:
    with open('/proc/cpuinfo') as f:
        for line in f:
            name, _, value = line.partition(':')
            if name.strip() == key:
                return value.strip()
    raise AssertionError(f'no {key!r} in /proc/cpuinfo')


def test_each_seed_trains_tests_and_records_cpu_threads_and_options(tmp_path):
    log = tmp_path / 'calls.log'
    stub = tmp_path / 'py'
    stub.write_text(STUB.format(log=log))
    stub.chmod(0o755)
    env = dict(os.environ, PYTHON=str(stub))
    env.pop('OMP_NUM_THREADS', None)
    proc = subprocess.run([SCRIPT, 'some/config.py', 'probe', '3 5', 'a.b=1', 'c=(0.5,0.9)'],
                          cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert proc.stdout.splitlines() == [
        'probe seed 3: ALL   101.0   80.0   104.0', 'probe seed 5: ALL   101.0   80.0   104.0']
    calls = log.read_text().splitlines()
    wd = 'work_dirs/ablation/probe_seed{}'
    assert calls == [
        f'tools/train.py some/config.py --work-dir {wd.format(3)} --cfg-options '
        'randomness.seed=3 a.b=1 c=(0.5,0.9)',
        f'tools/test.py some/config.py {wd.format(3)}/epoch_7.pth --work-dir {wd.format(3)} '
        f'--out {wd.format(3)}/metrics.json --cfg-options a.b=1 c=(0.5,0.9)',
        f'tools/train.py some/config.py --work-dir {wd.format(5)} --cfg-options '
        'randomness.seed=5 a.b=1 c=(0.5,0.9)',
        f'tools/test.py some/config.py {wd.format(5)}/epoch_7.pth --work-dir {wd.format(5)} '
        f'--out {wd.format(5)}/metrics.json --cfg-options a.b=1 c=(0.5,0.9)',
    ]
    info = (tmp_path / wd.format(5) / 'run_info.txt').read_text().splitlines()
    keys = [line.split(':')[0] for line in info]
    assert keys == ['cpu', 'cpu_id', 'threads', 'commit', 'config', 'seed', 'options', 'wall_s']
    fields = dict(line.split(': ', 1) for line in info)
    # The CPU's generation, not only its marketing name, and one thread by default.
    assert fields['cpu_id'].startswith(
        f"family {_cpuinfo('cpu family')} model {_cpuinfo('model')} avx512f ")
    assert fields['cpu_id'].split()[-1] in ('yes', 'no')
    assert fields['threads'] == '1'
    assert (fields['config'], fields['seed'], fields['options']) == (
        'some/config.py', '5', 'a.b=1 c=(0.5,0.9)')
    assert int(fields['wall_s']) >= 0
