"""The training step and the zoo's predictions reproduce the golden record, on any x86-64 CPU.

``tests/data/golden_train_steps.json`` (with the zoo arrays in ``golden_zoo_predictions.npz``)
is written by ``tools/misc/record_golden.py --write``: for every shipped training config three
seeded train steps of a tiny model on one thread (the ``log_vars`` of each step and a summary of
every state-dict tensor afterwards), and ``predict_3d`` of every zoo checkpoint on 64 fixed test
poses. It describes the computation of the code before the loss/sampler refactor (commit
f183e49): the record of the previous format (exact values and sha256s) was reproduced bit for
bit, every state-dict and prediction hash included, by the recording the current file was
written from. Any change to the training step's arithmetic or random streams shows up here.

What changes between machines is not the random streams (torch's and NumPy's generators are
integer algorithms) but the order of floating-point reductions: torch picks its CPU kernels by
instruction set (``ATEN_CPU_CAPABILITY``: default / AVX2 / AVX-512), its float32 matrix
products are MKL's (SGEMM, whose code path depends on the CPU; oneDNN runs no primitive in
these steps), and sums are split across threads. The record's bytes are a property of one
machine; the values differ in the last bits, which three Adam steps carry into the losses and
weights. Largest deviations measured from the one-thread recording on one machine (AVX2), over
2 threads, ``ATEN_CPU_CAPABILITY=default``, ``MKL_CBWR=COMPATIBLE``, and both combined with
2 threads (and with MKL restricted to SSE4.2, NumPy's SIMD dispatch off, OpenBLAS's Prescott
kernels), all 20 configs and 4 zoo models, and the tolerances chosen (constants of
``record_golden.py``, ``|got - want| <= atol + rtol |want|``)::

    value                                 largest deviation      tolerance          margin
    losses                                rel 2.6e-6             rtol 3e-5           11x
    weights (each element)                abs 1.5e-7             atol 2e-6           13x
    norm of each tensor's change (init)   rel 2.5e-5             rtol 2.5e-4         10x
    BN-absorbed biases, running means     abs 7.3e-5             atol 1e-3           14x
    zoo predictions                       abs 4.4e-6             atol 5e-5           11x

(MKL_ENABLE_INSTRUCTIONS=AVX2/AVX/SSE4_2, ONEDNN_MAX_CPU_ISA=AVX2, NumPy's or OpenBLAS's
kernels alone changed no bit; AVX-512 cannot run on that machine. A reported loss of another
CPU, 0.33256271 vs 0.33256277, is 1.8e-7 relative.) Weights are checked on 8 sampled values
per tensor and on each tensor's sum, sum of absolute values and norms, with the bounds the
element-wise tolerance implies. The biases of a Linear layer followed by BatchNorm have an
exact gradient of 0 (the normalisation cancels them), so Adam turns their rounding noise into
steps of up to ``lr``; they and the BatchNorm's running mean only get a sanity tolerance.

A real change exceeds the tolerances by far, on the demo config
(``test_a_small_change_of_the_computation_is_outside_the_tolerance``): a loss weight x1.001
moves its loss 33x the tolerance, the lifter's learning rate x1.001 the norm of the weight
changes 4.3x, one extra random draw the losses 2e4x; a zoo model's first layer x1.001 moves
its predictions 8-94x the tolerance.
"""
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import REPO, load_tool

GOLDEN = load_tool('misc', 'record_golden.py')
# The config `make demo` trains (the sensitivity checks re-run its recorded steps).
DEMO = 'configs/unsup3d/unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py'


@pytest.fixture(scope='module')
def golden():
    return GOLDEN.load()


@pytest.fixture(scope='module')
def recorded():
    threads = torch.get_num_threads()
    try:
        return GOLDEN.record(threads=1)
    finally:
        torch.set_num_threads(threads)


def test_every_shipped_training_config_is_recorded(golden):
    assert golden['format'] == GOLDEN.FORMAT
    names = {p.split('configs/', 1)[1] for p in golden['configs']}
    shipped = {p.split('configs/', 1)[1] for p in
               (GOLDEN.osp.relpath(c, GOLDEN.REPO) for c in GOLDEN.training_configs())}
    assert names == shipped
    assert all(len(c['steps']) == golden['num_steps'] for c in golden['configs'].values())


def test_train_steps_reproduce_golden_log_vars_and_weights(golden, recorded):
    bad = []
    for name, want in golden['configs'].items():
        got = recorded['configs'][name]
        bad += GOLDEN.compare_steps(got['steps'], want['steps'], name)
        bad += GOLDEN.compare_state(got['state'], want['state'], name)
    assert not bad, '\n'.join(bad[:30])


def test_zoo_predictions_reproduce_golden(golden, recorded):
    assert sorted(recorded['zoo']) == sorted(golden['zoo'])
    for name, want in golden['zoo'].items():
        assert want.shape == (GOLDEN.NUM_POSES, 17, 3) and want.dtype == np.float32
        assert not GOLDEN.compare_predictions(recorded['zoo'][name], want, name)


def _scale_chirality_weight(cfg):
    (loss, ) = [c for c in cfg.model.cycle_losses if c.type == 'ChiralityLoss']
    loss.loss_weight *= 1.001


def _scale_lifter_lr(cfg):
    cfg.optim_wrapper.lifter.optimizer.lr *= 1.001


# name -> (modify the config, extra random draws, the comparison that must catch it)
CHANGES = {
    'chirality loss weight x1.001': (_scale_chirality_weight, 0, 'loss'),
    'lifter learning rate x1.001': (_scale_lifter_lr, 0, 'state'),
    'one extra random draw': (None, 1, 'loss'),
}


@pytest.mark.parametrize('change', list(CHANGES))
def test_a_small_change_of_the_computation_is_outside_the_tolerance(golden, recorded, change,
                                                                    one_thread):
    """The tolerances still prove a refactor: small real changes exceed them."""
    modify, draws, caught_by = CHANGES[change]
    want = golden['configs'][DEMO]
    # Unchanged, the same steps are within the tolerance (so the check below is not vacuous).
    same = recorded['configs'][DEMO]
    assert not GOLDEN.compare_steps(same['steps'], want['steps'], DEMO)
    assert not GOLDEN.compare_state(same['state'], want['state'], DEMO)
    got = GOLDEN.record_config(osp.join(REPO, DEMO), '', modify, draws)
    bad = dict(loss=GOLDEN.compare_steps(got['steps'], want['steps'], DEMO),
               state=GOLDEN.compare_state(got['state'], want['state'], DEMO))
    assert bad[caught_by], change


def test_bn_absorbed_biases_are_the_ones_before_batchnorm(golden):
    state = golden['configs'][DEMO]['state']
    absorbed = sorted(k for k, v in state.items() if v.get('absorbed'))
    assert absorbed == ['lifter.blocks.0.layers.0.bias', 'lifter.blocks.0.layers.1.running_mean',
                        'lifter.blocks.0.layers.4.bias', 'lifter.blocks.0.layers.5.running_mean',
                        'lifter.stem.0.bias', 'lifter.stem.1.running_mean']


def test_a_slightly_changed_zoo_weight_is_outside_the_tolerance(golden):
    name = next(iter(golden['zoo']))

    def scale_first_layer(model):
        with torch.no_grad():
            next(model.lifter.parameters()).mul_(1.001)

    unchanged = GOLDEN.predict_zoo_model(name)
    assert not GOLDEN.compare_predictions(unchanged, golden['zoo'][name], name)
    got = GOLDEN.predict_zoo_model(name, scale_first_layer)
    assert GOLDEN.compare_predictions(got, golden['zoo'][name], name)
