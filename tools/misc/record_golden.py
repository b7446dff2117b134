"""Record (or check) golden outputs that a refactor of the training step must reproduce.

For every shipped training config (lifter and discriminators shrunk to width 32, one block; a
slice of the data) a few seeded ``train_step`` calls on CPU with one thread: the ``log_vars``
of each step, and a summary of every state-dict tensor afterwards (:func:`tensor_summary`: a
deterministic subsample of its values, its sum, sum of absolute values and norm, and the norm of
its change since the seeded initialisation). For every committed zoo checkpoint, the
``(64, 17, 3)`` array of ``predict_3d`` on fixed test poses. Stored in
``tests/data/golden_train_steps.json`` (the zoo arrays, exact float32, in
``tests/data/golden_zoo_predictions.npz``); ``tests/test_models/test_golden_record.py``
compares with :func:`compare`.

Why tolerances and not bits: CPUs differ in the kernels that torch, MKL and NumPy dispatch to
(AVX2 / AVX-512 / generic) and thus in the order of floating-point reductions, and so does the
thread count. The same code gives last-bit differences that a few Adam steps carry into the
losses and weights; a real change of the computation (a loss weight, the learning rate, a
random draw) moves them far more. The tolerances below are chosen from measured deviations;
``tests/test_models/test_golden_record.py`` states the numbers and checks both sides.

Usage (the recording runs on one torch thread whatever ``OMP_NUM_THREADS`` says)::

    python tools/misc/record_golden.py                    # compare to the record
    python tools/misc/record_golden.py --write            # check, then (re)write it
    python tools/misc/record_golden.py --write --force    # a deliberate change

``--write`` first compares the new recording with the existing record on every value the two
share (with the tolerances below) and refuses to overwrite it when they differ, unless
``--force`` says that the computation was changed on purpose.
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import numpy as np
import torch
from torch import nn

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

GOLDEN = osp.join(REPO, 'tests', 'data', 'golden_train_steps.json')
GOLDEN_ZOO = osp.join(REPO, 'tests', 'data', 'golden_zoo_predictions.npz')
FORMAT = 2
NUM_STEPS = 3
BATCH = 32
#: Values of each state-dict tensor kept verbatim (evenly spaced flat positions).
SAMPLE_SIZE = 8
#: Test poses of the zoo predictions.
NUM_POSES = 64

# Tolerances, ``|got - want| <= ATOL + RTOL * |want|``, chosen from the deviations measured
# between CPU kernels and thread counts (numbers and margins: the test module's docstring).
# Losses of each step:
LOSS_RTOL = 3e-5
LOSS_ATOL = 1e-9
# Every state-dict element (checked on the subsample; the tensor's sum, sum of |.| and norms
# with the bounds that this element-wise tolerance implies, see compare_state):
WEIGHT_RTOL = 0.0
WEIGHT_ATOL = 2e-6
# The norm of each tensor's change since the seeded initialisation, relative: the check that
# sees a slightly different learning rate (Adam's first steps are ~lr per element).
DELTA_RTOL = 2.5e-4
# Tensors the loss does not determine (see bn_absorbed): rounding noise, amplified by Adam to
# a fraction of its step size; only gross differences (initialisation, shape) are meaningful.
ABSORBED_ATOL = 1e-3
# Zoo predictions (normalised 3D, |x| <~ 1.5):
PRED_RTOL = 0.0
PRED_ATOL = 5e-5


def bn_absorbed(model: nn.Module) -> Set[str]:
    """State keys whose values rounding noise decides: biases absorbed by a BatchNorm.

    The bias of a ``Linear`` directly followed by a ``BatchNorm`` (in an ``nn.Sequential``)
    cancels in the normalisation, so its exact gradient is 0 and its computed gradient is
    rounding noise, which Adam's ``m / sqrt(v)`` turns into steps of up to ``lr``; the
    BatchNorm's ``running_mean`` averages that bias. Both differ between machines far more than
    any other value (and say nothing about the computation), so they get
    :data:`ABSORBED_ATOL`.
    """
    keys = set()
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name_a, a), (name_b, b) in zip(children, children[1:]):
            if (isinstance(a, nn.Linear) and a.bias is not None
                    and isinstance(b, nn.modules.batchnorm._BatchNorm)):
                base = f'{prefix}.' if prefix else ''
                keys |= {f'{base}{name_a}.bias', f'{base}{name_b}.running_mean'}
    return keys


def tensor_summary(value: torch.Tensor, init: Optional[torch.Tensor] = None,
                   absorbed: bool = False) -> Dict[str, Any]:
    """A description of one state-dict tensor that can be compared with a tolerance.

    Args:
        value: the tensor after training.
        init: the same tensor at the seeded initialisation (``None``: no ``delta_norm``).
        absorbed: the tensor is one of :func:`bn_absorbed`'s (stored as ``absorbed: true``).

    Returns:
        ``shape``, ``dtype`` and ``values`` (up to :data:`SAMPLE_SIZE` elements at evenly
        spaced flat positions, exact); for floating-point tensors also ``sum``, ``abs_sum``,
        ``norm`` and ``delta_norm`` (``||value - init||``), accumulated in float64 so that the
        summary adds no rounding of its own worth mentioning.
    """
    value = value.detach().cpu()
    flat = value.reshape(-1)
    n = flat.numel()
    pos = np.unique(np.linspace(0, n - 1, min(n, SAMPLE_SIZE)).round().astype(np.int64))
    out: Dict[str, Any] = dict(shape=list(value.shape), dtype=str(value.dtype).split('.')[-1])
    if not value.is_floating_point():
        out['values'] = [int(flat[i]) for i in pos]
        return out
    d = flat.double()
    out.update(values=[float(d[i]) for i in pos], sum=float(d.sum()),
               abs_sum=float(d.abs().sum()), norm=float(d.norm()))
    if init is not None:
        out['delta_norm'] = float((d - init.detach().cpu().reshape(-1).double()).norm())
    if absorbed:
        out['absorbed'] = True
    return out


def training_configs() -> List[str]:
    """Every shipped config with a training part that builds an ``Unsup3DLifter``."""
    paths = sorted(glob.glob(osp.join(REPO, 'configs', 'unsup3d', '*.py')))
    paths.append(osp.join(REPO, 'configs', 'unsup3d_h36m.py'))
    return [p for p in paths if 'flatdepth' not in osp.basename(p)]


def _shrink(cfg, data_root: str):
    from mmunsup3d.engine.launch import propagate_data_root
    cfg.model.lifter.width = 32
    cfg.model.lifter.num_blocks = 1
    for name in ('discriminator', 'temporal_discriminator'):
        if cfg.model.get(name):
            cfg.model[name].width = 32
            cfg.model[name].num_blocks = 1
    for name in ('elevation_net', 'adapter'):
        if cfg.model.get(name):
            cfg.model[name].width = 16
    cfg.train_dataloader.batch_size = BATCH
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    if 'h36m' in osp.basename(cfg.filename):
        propagate_data_root(cfg, dict(data_root=data_root))
    return cfg


def record_config(path: str, data_root: str, modify: Optional[Callable] = None,
                  extra_draws: int = 0) -> Dict[str, Any]:
    """``log_vars`` of ``NUM_STEPS`` seeded train steps and the final state-dict summary.

    Args:
        path: the training config.
        data_root: where the Human3.6M fixture was written (for the h36m configs).
        modify: called with the shrunk config before the model is built (the tests use it to
            show that a small change of the computation exceeds the tolerances).
        extra_draws: numbers drawn from torch's global generator before the first step (same
            purpose: one extra random draw shifts every later one).

    Returns:
        ``dict(steps=[{loss name: float}], state={key: tensor_summary})``.
    """
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner
    from mmpose.registry import MODELS
    cfg = _shrink(Config.fromfile(path), data_root)
    if modify is not None:
        modify(cfg)
    torch.manual_seed(0)
    np.random.seed(0)
    model = MODELS.build(cfg.model)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=True, seed=0)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    torch.manual_seed(1)
    if extra_draws:
        torch.rand(extra_draws)
    steps = []
    it = iter(loader)
    model.train()
    for _ in range(NUM_STEPS):
        log_vars = model.train_step(next(it), optim)
        steps.append({k: float(v.detach() if torch.is_tensor(v) else v)
                      for k, v in sorted(log_vars.items())})
    absorbed = bn_absorbed(model)
    state = {k: tensor_summary(v, init[k], k in absorbed)
             for k, v in sorted(model.state_dict().items())}
    return dict(steps=steps, state=state)


def zoo_poses() -> Tuple[torch.Tensor, torch.Tensor]:
    """The fixed ``(NUM_POSES, 17, 2)`` test poses and ``(NUM_POSES, 17)`` scores."""
    from mmunsup3d.datasets import MocapProjectionDataset
    test = MocapProjectionDataset(split='test').arrays
    idx = np.linspace(0, len(test['keypoints_2d']) - 1, NUM_POSES).astype(int)
    kpts = torch.from_numpy(test['keypoints_2d'][idx])
    scores = torch.from_numpy(
        np.linspace(0.2, 1.0, NUM_POSES * 17, dtype=np.float32).reshape(NUM_POSES, 17))
    return kpts, scores


def predict_zoo_model(name: str, modify: Optional[Callable] = None) -> np.ndarray:
    """``predict_3d`` of zoo model ``name`` on :func:`zoo_poses`, ``(NUM_POSES, 17, 3)``.

    Args:
        name: zoo name.
        modify: called with the loaded model before predicting (tests: a perturbed weight).
    """
    from mmunsup3d.apis import init_lifter
    from mmunsup3d.utils.zoo import resolve_model
    info = resolve_model(name)
    model = init_lifter(info['config'], info['local'])
    if modify is not None:
        modify(model)
    kpts, scores = zoo_poses()
    with torch.no_grad():
        pred = model.predict_3d(kpts, scores if model.use_scores else None)
    return pred.float().numpy()


def record_zoo() -> Dict[str, np.ndarray]:
    """:func:`predict_zoo_model` of every zoo model."""
    from mmunsup3d.utils.zoo import list_models
    return {name: predict_zoo_model(name) for name in list_models()}


def record(threads: int = 1) -> Dict[str, Any]:
    """The whole golden document (``zoo``: name -> array).

    Args:
        threads: torch intra-op threads for the recording (the record is made with one; other
            counts are within the tolerances too, see the test module).
    """
    import mmunsup3d  # noqa: F401  (registers components)
    from mmunsup3d.utils import register_all_modules
    register_all_modules()
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        fixture = load_fixture_tool()
        fixture.write_fixture(osp.join(tmp, 'h36m'))
        configs = {osp.relpath(p, REPO): record_config(p, osp.join(tmp, 'h36m'))
                   for p in training_configs()}
    return dict(format=FORMAT, num_steps=NUM_STEPS, batch_size=BATCH, torch=torch.__version__,
                configs=configs, zoo=record_zoo())


# ------------------------------------------------------------------------------- comparing
def _excess(got: float, want: float, atol: float, rtol: float) -> float:
    """``|got - want|`` over its bound ``atol + rtol |want|`` (> 1: outside the tolerance)."""
    return abs(got - want) / (atol + rtol * abs(want))


def compare_steps(got: List[Dict[str, float]], want: List[Dict[str, float]],
                  where: str) -> List[str]:
    """Mismatches of the per-step ``log_vars`` (missing or extra names, values)."""
    if len(got) != len(want):
        return [f'{where}: {len(got)} steps, recorded {len(want)}']
    bad = []
    for i, (g, w) in enumerate(zip(got, want)):
        if sorted(g) != sorted(w):
            bad.append(f'{where} step {i}: log_vars {sorted(g)}, recorded {sorted(w)}')
            continue
        for key in w:
            if _excess(g[key], w[key], LOSS_ATOL, LOSS_RTOL) > 1:
                bad.append(f'{where} step {i} {key}: {g[key]!r}, recorded {w[key]!r}')
    return bad


def compare_state(got: Dict[str, Dict], want: Dict[str, Dict], where: str) -> List[str]:
    """Mismatches of two state-dict summaries (:func:`tensor_summary`).

    The element-wise tolerance ``|g - w| <= A + R |w|`` (``A, R`` = :data:`WEIGHT_ATOL`,
    :data:`WEIGHT_RTOL`; for ``absorbed`` tensors ``A`` = :data:`ABSORBED_ATOL`) is checked on
    the sampled values. For the ``n`` elements that are not stored it implies
    ``|sum_g - sum_w| <= n A + R abs_sum_w`` (the same for ``abs_sum``) and, by the triangle
    inequality, ``|norm_g - norm_w| <= sqrt(n) A + R norm_w`` (the same for ``delta_norm``, as
    the seeded initialisation is the same), so these are checked too. ``delta_norm`` of the
    other tensors must also agree to :data:`DELTA_RTOL` (relative). Integer tensors
    (BatchNorm's ``num_batches_tracked``) must be equal.
    """
    if sorted(got) != sorted(want):
        return [f'{where}: state keys differ: {sorted(set(got) ^ set(want))}']
    bad = []
    for key, w in want.items():
        g = got[key]
        name = f'{where} {key}'
        if (g['shape'], g['dtype']) != (w['shape'], w['dtype']):
            bad.append(f'{name}: {g["dtype"]}{g["shape"]}, recorded {w["dtype"]}{w["shape"]}')
            continue
        if 'sum' not in w:
            if g['values'] != w['values']:
                bad.append(f'{name}: {g["values"]}, recorded {w["values"]}')
            continue
        absorbed = w.get('absorbed', False)
        if g.get('absorbed', False) != absorbed:
            bad.append(f'{name}: absorbed by a BatchNorm {not absorbed}, recorded {absorbed}')
            continue
        atol = ABSORBED_ATOL if absorbed else WEIGHT_ATOL
        for i, (gv, wv) in enumerate(zip(g['values'], w['values'])):
            if _excess(gv, wv, atol, WEIGHT_RTOL) > 1:
                bad.append(f'{name} sampled value {i}: {gv!r}, recorded {wv!r}')
        n = math.prod(w['shape'])
        bounds = dict(sum=n * atol + WEIGHT_RTOL * w['abs_sum'],
                      abs_sum=n * atol + WEIGHT_RTOL * w['abs_sum'],
                      norm=math.sqrt(n) * atol + WEIGHT_RTOL * w['norm'],
                      delta_norm=math.sqrt(n) * atol + WEIGHT_RTOL * w['norm'])
        if not absorbed:
            bounds['delta_norm'] = min(bounds['delta_norm'], DELTA_RTOL * w['delta_norm'])
        for stat, bound in bounds.items():
            if abs(g[stat] - w[stat]) > bound:
                bad.append(f'{name} {stat}: {g[stat]!r}, recorded {w[stat]!r} '
                           f'(bound {bound:.2e})')
    return bad


def compare_predictions(got: np.ndarray, want: np.ndarray, where: str) -> List[str]:
    """Mismatches of two prediction arrays (shape, then element-wise tolerance)."""
    if got.shape != want.shape:
        return [f'{where}: shape {got.shape}, recorded {want.shape}']
    err = np.abs(got.astype(np.float64) - want) - PRED_RTOL * np.abs(want.astype(np.float64))
    if (err > PRED_ATOL).any():
        i = np.unravel_index(int(np.argmax(err)), err.shape)
        return [f'{where}: {int((err > PRED_ATOL).sum())} values outside the tolerance, e.g. '
                f'{tuple(int(j) for j in i)}: {got[i]!r}, recorded {want[i]!r}']
    return []


def compare(got: Dict[str, Any], want: Dict[str, Any]) -> List[str]:
    """Every difference of recording ``got`` from record ``want`` beyond the tolerances.

    ``want`` may also be a record of the previous format (exact losses, sha256 of the state
    dict and of the predictions, the first 9 predicted values): then the values it stores are
    compared (losses; the first values of each prediction array) and the hashes are ignored,
    as bytes can only be compared on the machine that wrote them.

    Returns:
        Human-readable mismatches (empty: ``got`` reproduces ``want``). Configs or zoo models
        only in ``got`` are not mismatches (new entries); ones only in ``want`` are.
    """
    bad = []
    for name, w in want['configs'].items():
        if name not in got['configs']:
            bad.append(f'{name}: recorded but not recorded now')
            continue
        g = got['configs'][name]
        bad += compare_steps(g['steps'], w['steps'], name)
        if 'state' in w:
            bad += compare_state(g['state'], w['state'], name)
    for name, w in want['zoo'].items():
        if name not in got['zoo']:
            bad.append(f'zoo {name}: recorded but not recorded now')
        elif isinstance(w, dict):  # previous format: the first 9 values only
            first = np.asarray(w['first'], np.float64)
            bad += compare_predictions(got['zoo'][name][0, :3].ravel(), first, f'zoo {name}')
        else:
            bad += compare_predictions(got['zoo'][name], w, f'zoo {name}')
    return bad


def deviations(got: Dict[str, Any], want: Dict[str, Any]) -> Dict[str, Tuple[float, float]]:
    """Largest absolute and relative deviations of ``got`` from ``want``, per kind of value.

    Returns:
        ``{kind: (max |got - want|, max |got - want| / |want|)}`` for the kinds ``loss``,
        ``weight`` (sampled values of the tensors that are not ``absorbed``; relative to
        ``max(|want|, 1e-3)``), ``delta_norm`` (of those tensors), ``absorbed`` (sampled values)
        and ``prediction`` (relative to ``max(|want|, 1e-2)``; ``want`` of the previous
        format: its first 9 values). Relative deviations of exact zeros count as 0.
    """
    acc: Dict[str, List[Tuple[float, float]]] = {}

    def add(kind: str, g: float, w: float, floor: float = 0.0) -> None:
        scale = max(abs(w), floor)
        acc.setdefault(kind, []).append((abs(g - w), abs(g - w) / scale if scale else 0.0))

    for name, w in want['configs'].items():
        g = got['configs'][name]
        for gs, ws in zip(g['steps'], w['steps']):
            for key in ws:
                add('loss', gs[key], ws[key])
        for key, wt in w.get('state', {}).items():
            gt = g['state'][key]
            if 'sum' not in wt:
                continue
            kind = 'absorbed' if wt.get('absorbed') else 'weight'
            for gv, wv in zip(gt['values'], wt['values']):
                add(kind, gv, wv, 1e-3)
            if kind == 'weight':
                add('delta_norm', gt['delta_norm'], wt['delta_norm'])
    for name, w in want['zoo'].items():
        gp = got['zoo'][name]
        wp = np.asarray(w['first']) if isinstance(w, dict) else w
        gp = gp[0, :3].ravel() if isinstance(w, dict) else gp
        for gv, wv in zip(np.ravel(gp).tolist(), np.ravel(wp).tolist()):
            add('prediction', gv, wv, 1e-2)
    return {k: (max(a for a, _ in v), max(r for _, r in v)) for k, v in acc.items()}


# ------------------------------------------------------------------------------- files
def dumps(doc: Dict[str, Any]) -> str:
    """JSON text of a record, one line per state-dict tensor (the file stays readable)."""
    lines: Dict[str, str] = {}

    def token(summary: Dict[str, Any]) -> str:
        lines[f'@{len(lines)}@'] = json.dumps(summary, sort_keys=True)
        return f'@{len(lines) - 1}@'

    configs = {name: dict(c, state={k: token(v) for k, v in c['state'].items()})
               for name, c in doc['configs'].items()}
    text = json.dumps(dict(doc, configs=configs), indent=1, sort_keys=True) + '\n'
    for tok, line in lines.items():
        text = text.replace(f'"{tok}"', line, 1)
    return text


def dump(doc: Dict[str, Any], path: str = GOLDEN, zoo_path: str = GOLDEN_ZOO) -> None:
    """Write a recording: JSON (zoo entries: the arrays' shapes) and the zoo arrays (npz)."""
    meta = dict(doc, zoo={name: dict(shape=list(arr.shape), file=osp.basename(zoo_path))
                          for name, arr in doc['zoo'].items()})
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(zoo_path + '.tmp', 'wb') as f:
        np.savez(f, **{name: np.asarray(arr, np.float32) for name, arr in doc['zoo'].items()})
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        f.write(dumps(meta))
    os.replace(zoo_path + '.tmp', zoo_path)
    os.replace(path + '.tmp', path)


def load(path: str = GOLDEN) -> Dict[str, Any]:
    """Read a record; the zoo entries of this format become their arrays (from the npz)."""
    with open(path, encoding='utf-8') as f:
        doc = json.load(f)
    if doc.get('format') == FORMAT:
        zoo_path = osp.join(osp.dirname(path), next(iter(doc['zoo'].values()))['file'])
        with np.load(zoo_path, allow_pickle=False) as arrays:
            doc['zoo'] = {name: arrays[name] for name in doc['zoo']}
    return doc


def load_fixture_tool():
    import importlib.util
    path = osp.join(REPO, 'tools', 'dataset_converters', 'make_h36m_fixture.py')
    spec = importlib.util.spec_from_file_location('make_h36m_fixture', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--write', action='store_true', help=f'write {GOLDEN} (and the npz)')
    parser.add_argument('--force', action='store_true',
                        help='with --write: overwrite even if the existing record differs '
                        '(a deliberate change of the computation)')
    args = parser.parse_args()
    doc = record()
    bad = []
    if osp.isfile(GOLDEN):
        want = load()
        for kind, (dev_abs, dev_rel) in sorted(deviations(doc, want).items()):
            print(f'deviation from the record: {kind:10s} abs {dev_abs:.2e}  rel {dev_rel:.2e}')
        bad = compare(doc, want)
        print('\n'.join(bad) if bad else 'golden record reproduced (within the tolerances)')
    if args.write:
        if bad and not args.force:
            print(f'not writing {GOLDEN}: the recording differs from it (--force if meant)',
                  file=sys.stderr)
            return 1
        dump(doc)
        print(f'wrote {GOLDEN} and {GOLDEN_ZOO}')
        return 0
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
