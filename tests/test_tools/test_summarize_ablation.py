"""tools/misc/summarize_ablation.py: parsing of run folders, mean ± sample std, archive."""
import json
import math
import os
import os.path as osp

import pytest

from helpers import load_tool

summ = load_tool('misc', 'summarize_ablation.py')


def _run(root, name, n, p, m, rate=None, mirrored=None):
    os.makedirs(osp.join(root, name))
    metrics = {'N-MPJPE': n / 1000, 'P-MPJPE': p / 1000, 'MPJPE': m / 1000}
    if rate is not None:
        metrics['chirality_rate'] = rate
    with open(osp.join(root, name, 'metrics.json'), 'w') as f:
        json.dump(metrics, f)
    if mirrored is not None:
        with open(osp.join(root, name, 'mirror.json'), 'w') as f:
            json.dump({'mirrored': mirrored}, f)


def test_parse_run_names():
    assert summ.parse_run('tdisc_seed3') == ('tdisc', 'tail', (-1, 3))
    assert summ.parse_run('tdisc_fold2_seed0') == ('tdisc', 'leave-motion-out', (2, 0))
    assert summ.parse_run('flat_fold4') == ('flat', 'leave-motion-out', (4, -1))
    assert summ.parse_run('2ddisc-nochiral_seed10') == ('2ddisc-nochiral', 'tail', (-1, 10))
    assert summ.parse_run('queues') is None


def test_mean_and_sample_std_hand_computed():
    assert summ.mean_std([100.0, 110.0, 120.0]) == (110.0, 10.0)
    assert summ.mean_std([5.0]) == (5.0, 0.0)
    assert summ.fmt([100.0, 110.0, 120.0]) == '100.0 / 110.0 / 120.0 (**110.0 ± 10.0**)'
    assert summ.fmt([112.44]) == '112.4'  # one run: no spread to show


def test_table_rows_mirrored_and_chirality(tmp_path):
    root = str(tmp_path / 'ablation')
    _run(root, 'a_seed0', 100, 80, 110, rate=0.02, mirrored=False)
    _run(root, 'a_seed1', 120, 90, 130, rate=0.97, mirrored=True)
    _run(root, 'a_fold0_seed0', 150, 100, 160, rate=0.05)
    _run(root, 'flat_fold0', 160, 120, 170)
    os.makedirs(osp.join(root, 'a_seed2'))  # unfinished run: no metrics.json, skipped
    text = summ.table(summ.collect([root]))
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith('| a | tail'))
    std = math.sqrt(2 * 10.0 ** 2)  # sample std of 100, 120
    assert f'100.0 / 120.0 (**110.0 ± {std:.1f}**)' in row
    assert '| 1/2 |' in row and row.endswith('| 2.0 / 97.0 |')
    lmo = next(line for line in lines if line.startswith('| a | leave-motion-out'))
    assert '| f0s0 |' in lmo and '| ? |' in lmo  # no mirror.json: unknown, not "0/1"
    flat = next(line for line in lines if line.startswith('| flat |'))
    assert '| f0 |' in flat and flat.endswith('| ? | ? |')


def test_archive_copies_only_result_files(tmp_path):
    root, dest = str(tmp_path / 'ablation'), str(tmp_path / 'archive')
    _run(root, 'a_seed0', 100, 80, 110, rate=0.0, mirrored=False)
    with open(osp.join(root, 'a_seed0', 'epoch_100.pth'), 'wb') as f:
        f.write(b'weights')
    with open(osp.join(root, 'a_seed0', 'run_info.txt'), 'w') as f:
        f.write('threads: 1\n')
    assert summ.archive([root], dest) == 1
    assert sorted(os.listdir(osp.join(dest, 'a_seed0'))) == ['metrics.json', 'mirror.json',
                                                              'run_info.txt']
    # The archive reads back like the original.
    assert summ.collect([dest]) == summ.collect([root])


def test_missing_root_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr('sys.argv', ['summarize_ablation.py', str(tmp_path / 'nope')])
    with pytest.raises(SystemExit):
        summ.main()
    assert 'not a folder' in capsys.readouterr().err
