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
    import mmunsup3d.apis  # noqa: F401
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
