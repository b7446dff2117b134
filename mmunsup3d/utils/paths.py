"""Where the project's shipped files (configs, data, model index) live."""
import os.path as osp
from typing import List

__all__ = ['project_roots']


def project_roots() -> List[str]:
    """Roots that hold ``configs/``, ``data/pybullet_mocap``, ``model-index.yml``...

    The repository (editable installs and checkouts) first, then the installed package's
    ``.mim`` folder (wheels copy them there, see setup.py).
    """
    pkg = osp.dirname(osp.dirname(osp.abspath(__file__)))  # .../mmunsup3d
    return [osp.dirname(pkg), osp.join(pkg, '.mim')]
