"""Install mmunsup3d.

Like MMPose, ``configs/``, ``tools/`` and ``model-index.yml`` are shipped as package data under
``mmunsup3d/.mim`` so that ``_base_ = ['mmunsup3d::unsup3d/...']`` resolves from anywhere.
In editable installs they are symlinked; in wheels/sdists they are copied.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_ITEMS = ('configs', 'tools', 'model-index.yml', 'model_zoo.md', 'data/pybullet_mocap',
             'checkpoints')


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mmunsup3d', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> list:
    reqs = []
    with open(osp.join(HERE, fname), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                reqs += parse_requirements(osp.join(osp.dirname(fname), line[3:].strip()))
            else:
                reqs.append(line)
    return reqs


def add_mim_extension() -> None:
    """Expose configs/tools inside the package (symlinks for develop, copies otherwise)."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'install', 'build', 'build_py'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(HERE, 'mmunsup3d', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_ITEMS:
        src = osp.join(HERE, name)
        if not osp.exists(src):
            continue
        dst = osp.join(mim_path, name)
        os.makedirs(osp.dirname(dst), exist_ok=True)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, osp.dirname(dst)), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmunsup3d',
        version=get_version(),
        description='Unsupervised 3D human pose lifting with geometric self-supervision '
        '(Chen et al., CVPR 2019) for MMPose',
        long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read()
        if osp.exists(osp.join(HERE, 'README.md')) else '',
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        python_requires='>=3.9',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'demo', 'benchmarks')),
        include_package_data=True,
        package_data={'mmunsup3d': ['.mim/**/*', '.mim/*']},
        install_requires=parse_requirements('requirements/runtime.txt'),
        extras_require={
            'tests': parse_requirements('requirements/tests.txt'),
            'openmmlab': parse_requirements('requirements/openmmlab.txt'),
        },
        zip_safe=False,
    )
