"""Registration of mmunsup3d's components into MMPose's registries."""
from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every module that registers components, then MMPose's own.

    Our components live in MMPose's registries (``mmpose.registry.MODELS`` etc.), so configs use
    ``default_scope='mmpose'`` and can mix MMPose and mmunsup3d types freely.

    Args:
        init_default_scope: set the default scope to ``mmpose`` (as MMPose's function does).
    """
    from mmpose.utils import register_all_modules as mmpose_register_all_modules
    mmpose_register_all_modules(init_default_scope=False)
    import mmunsup3d.codecs  # noqa: F401
    import mmunsup3d.datasets  # noqa: F401
    import mmunsup3d.engine  # noqa: F401
    import mmunsup3d.evaluation  # noqa: F401
    import mmunsup3d.models  # noqa: F401
    if init_default_scope:
        never_created = DefaultScope.get_current_instance() is None or \
            not DefaultScope.check_instance_created('mmpose')
        if never_created:
            DefaultScope.get_instance('mmpose', scope_name='mmpose')
            return
        current = DefaultScope.get_current_instance()
        if current.scope_name != 'mmpose':
            import datetime
            DefaultScope.get_instance(
                f'mmpose-{datetime.datetime.now()}', scope_name='mmpose')


def register_config_scope() -> None:
    """Let MMEngine resolve ``_base_ = ['mmunsup3d::<path under configs/>']``.

    MMEngine 0.10.7 only accepts the ``pkg::`` prefix for packages in its hard-coded
    ``MODULE2PACKAGE`` table, and finds ``<pkg>/.mim/configs`` through
    ``get_installed_path``, which for a PEP 660 editable install (``pip install -e .``) points
    at a non-existent ``site-packages/mmunsup3d``. Register the scope and wrap
    ``mmengine.config.config.get_installed_path`` so that, for ``mmunsup3d`` only and only
    when MMEngine's answer does not exist, it answers with the directory ``mmunsup3d`` is
    imported from; every other package gets MMEngine's own answer. Idempotent.
    """
    import os.path as osp

    from mmengine.config import config as config_module
    from mmengine.config import utils as config_utils

    config_utils.MODULE2PACKAGE.setdefault('mmunsup3d', 'mmunsup3d')
    original = config_module.get_installed_path
    if getattr(original, '_mmunsup3d_scope', False):
        return
    package_dir = osp.dirname(osp.dirname(osp.abspath(__file__)))  # .../mmunsup3d

    def get_installed_path(package: str) -> str:
        found = original(package)
        if package == 'mmunsup3d' and not osp.isdir(found):
            return package_dir
        return found

    get_installed_path._mmunsup3d_scope = True
    config_module.get_installed_path = get_installed_path
