import os
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture(scope='session', autouse=True)
def _register():
    from mmunsup3d.utils import register_all_modules
    register_all_modules(init_default_scope=True)


@pytest.fixture
def one_thread():
    """One intra-op thread for the duration of a test, then the old count."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def repo_root():
    return REPO


def run_python(args, cwd=None, env=None, timeout=900):
    """Run a repo script with this interpreter; return the CompletedProcess (asserting rc 0)."""
    import subprocess
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f'{args} failed:\nSTDOUT\n{proc.stdout[-4000:]}\n' \
                                 f'STDERR\n{proc.stderr[-6000:]}'
    return proc
