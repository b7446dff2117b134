"""Dependencies point down: structures -> models/codecs -> datasets/engine -> apis -> tools."""
import ast
import os
import os.path as osp
import subprocess
import sys

from helpers import REPO

PKG = osp.join(REPO, 'mmunsup3d')


def _imports(folder: str):
    """(file, imported module) of every import under ``folder`` (relative ones resolved)."""
    for root, _, names in os.walk(osp.join(PKG, folder)):
        for name in names:
            if not name.endswith('.py'):
                continue
            path = osp.join(root, name)
            package = osp.relpath(root, REPO).replace(os.sep, '.')
            for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
                if isinstance(node, ast.ImportFrom):
                    base = package.split('.')
                    if node.level:
                        base = base[:len(base) - node.level + 1]
                        module = '.'.join(base + ([node.module] if node.module else []))
                    else:
                        module = node.module or ''
                    yield path, module
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        yield path, alias.name


def _offenders(folder: str, forbidden: tuple):
    return sorted({(osp.relpath(p, REPO), m) for p, m in _imports(folder)
                   if m.startswith(forbidden)})


def test_lower_layers_do_not_import_upper_ones():
    assert _offenders('structures', ('mmunsup3d.models', 'mmunsup3d.apis', 'mmunsup3d.datasets',
                                     'mmunsup3d.codecs', 'mmpose', 'mmengine')) == []
    assert _offenders('models', ('mmunsup3d.apis', 'mmunsup3d.datasets')) == []
    assert _offenders('codecs', ('mmunsup3d.apis', )) == []
    assert _offenders('utils', ('mmunsup3d.apis', )) == []


def test_import_for_training_does_not_load_the_zoo():
    code = ('import sys, mmunsup3d; from mmunsup3d.utils import register_all_modules; '
            'register_all_modules(); print(sorted(m for m in sys.modules if m.startswith("mmunsup3d") and "zoo" in m))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == '[]'


def test_components_are_registered_in_mmpose_registries():
    import mmunsup3d  # noqa: F401
    from mmpose.registry import MODELS, TASK_UTILS
    for name in ('ReprojectionConsistencyLoss', 'RotationConsistencyLoss', 'GANLoss',
                 'R1GradientPenalty', 'BoneSymmetryLoss', 'ElevationRegressionLoss',
                 'AdapterResidualLoss', 'ScaleAlignedMPJPELoss'):
        assert MODELS.get(name) is not None, name
    for name in ('RandomOrbitCameraSampler', 'ElevationRetiltCameraSampler', 'RandomFlip2D',
                 'KeypointNoise2D'):
        assert TASK_UTILS.get(name) is not None, name
