"""The training step and the zoo's predictions reproduce the golden record bit for bit.

``tests/data/golden_train_steps.json`` was written by ``tools/misc/record_golden.py --write``
from the code before the loss/sampler refactor (commit f183e49, one thread). Any change to the
training step's arithmetic or random streams shows up here.
"""
import json

import pytest
import torch

from helpers import load_tool

GOLDEN = load_tool('misc', 'record_golden.py')


@pytest.fixture(scope='module')
def golden():
    with open(GOLDEN.GOLDEN, encoding='utf-8') as f:
        return json.load(f)


@pytest.fixture(scope='module')
def recorded():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the record was made with one thread
    try:
        return GOLDEN.record()
    finally:
        torch.set_num_threads(threads)


def test_every_shipped_training_config_is_recorded(golden):
    names = {p.split('configs/', 1)[1] for p in golden['configs']}
    shipped = {p.split('configs/', 1)[1] for p in
               (GOLDEN.osp.relpath(c, GOLDEN.REPO) for c in GOLDEN.training_configs())}
    assert names == shipped
    assert all(len(c['steps']) == golden['num_steps'] for c in golden['configs'].values())


def test_train_steps_reproduce_golden_log_vars_and_weights(golden, recorded):
    for name, want in golden['configs'].items():
        got = recorded['configs'][name]
        assert got['steps'] == want['steps'], name
        assert got['state_sha256'] == want['state_sha256'], name


def test_zoo_predictions_reproduce_golden(golden, recorded):
    assert recorded['zoo'] == golden['zoo']
