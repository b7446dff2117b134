"""MMPose's ``Human36mDataset`` with its camera file read by the restricted unpickler.

MMPose 1.3.2 reads ``camera_param_file`` (``cameras.pkl``) inline in
``BaseMocapDataset.__init__`` with ``mmengine.load``, i.e. plain ``pickle.load``: a crafted file
runs whatever it names (``os.system``...) the moment the dataset is built. The plugin does not
change MMPose's class (a plain MMPose process keeps MMPose's behaviour); instead it registers
:class:`SafeHuman36mDataset`, which reads that file with
:func:`~mmunsup3d.utils.safe_pickle.safe_load` and is otherwise MMPose's dataset, unchanged.

Configs use it by ``type='SafeHuman36mDataset'`` (``tools/misc/convert_to_mmpose_lifter.py``
writes it); the project's ``tools/train.py`` and ``tools/test.py`` swap MMPose's type for it in
every dataloader's dataset (:func:`use_safe_h36m_datasets`), so MMPose's own Human3.6M
configs are safe through them too.
"""
import os.path as osp
from typing import Any, List, Optional

from mmengine.fileio import exists, get_local_path
from mmengine.utils import is_abs

from mmpose.datasets.datasets.body3d import Human36mDataset
from mmpose.registry import DATASETS
from ..utils.safe_pickle import safe_load

__all__ = ['SafeHuman36mDataset', 'load_camera_param', 'use_safe_h36m_datasets']

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# The type names that mean MMPose's class in a config (plain, or with MMPose's scope).
_MMPOSE_TYPES = ('Human36mDataset', 'mmpose.Human36mDataset')


def load_camera_param(camera_param_file: str, owner: str = 'SafeHuman36mDataset') -> dict:
    """MMPose's ``cameras.pkl`` (``{(subject, camera_id): {R, T, c, f, k, p, ...}}``),
    unpickled with the restricted unpickler.

    Args:
        camera_param_file: path (or any MMEngine file-backend URI) of the camera file.
        owner: the dataset named in error messages.

    Raises:
        FileNotFoundError: no such file.
        mmunsup3d.utils.safe_pickle.UnsafePickleError: the pickle names something other than
            plain data or NumPy arrays (nothing of it was executed); the message names the file.
        TypeError: the content is not a dict.
    """
    if not exists(camera_param_file):
        raise FileNotFoundError(f'{owner}: camera parameter file "{camera_param_file}" does '
                                'not exist')
    with get_local_path(camera_param_file) as local_path:
        camera_param = safe_load(local_path, name=camera_param_file)
    if not isinstance(camera_param, dict):
        raise TypeError(f'{owner}: {camera_param_file} must hold a dict keyed by (subject, '
                        f'camera_id), got {type(camera_param).__name__}')
    return camera_param


@DATASETS.register_module()
class SafeHuman36mDataset(Human36mDataset):
    """MMPose's ``Human36mDataset``, reading ``camera_param_file`` with ``safe_load``.

    Arguments, samples and attributes are MMPose's. The camera file is read here, before
    MMPose's ``__init__``, which is given no camera file; ``camera_param_file`` (resolved
    against ``data_root`` as MMPose does) and ``camera_param`` are then set as MMPose sets them,
    and only after that are the samples built (``full_init``, unless ``lazy_init``), so every
    sample carries its ``camera_param`` as in MMPose.

    Raises:
        FileNotFoundError, UnsafePickleError, TypeError: see :func:`load_camera_param`.
    """

    _owner = 'SafeHuman36mDataset'

    def __init__(self,
                 ann_file: str = '',
                 camera_param_file: Optional[str] = None,
                 data_root: Optional[str] = None,
                 lazy_init: bool = False,
                 **kwargs) -> None:
        camera_param = None
        if camera_param_file:
            if not is_abs(camera_param_file):
                camera_param_file = osp.join(data_root or '', camera_param_file)
            camera_param = load_camera_param(camera_param_file, self._owner)
        # lazy_init=True: MMPose's samples read the camera parameters, which are set below.
        super().__init__(ann_file=ann_file, camera_param_file=None, data_root=data_root,
                         lazy_init=True, **kwargs)
        if camera_param_file:
            self.camera_param_file = camera_param_file
            self.camera_param = camera_param
        if not lazy_init:
            self.full_init()


def _is_mmpose_h36m(dataset_type: Any) -> bool:
    return dataset_type in _MMPOSE_TYPES or dataset_type is Human36mDataset


def _swap_in(dataset: Any, path: str, swapped: List[str]) -> None:
    """Swap the type of ``dataset`` and of the datasets it wraps (``dataset``, ``datasets``)."""
    if not isinstance(dataset, dict):
        return
    if _is_mmpose_h36m(dataset.get('type')):
        dataset['type'] = 'SafeHuman36mDataset'
        swapped.append(path)
    _swap_in(dataset.get('dataset'), f'{path}.dataset', swapped)
    inner = dataset.get('datasets')
    if isinstance(inner, (list, tuple)):
        for i, item in enumerate(inner):
            _swap_in(item, f'{path}.datasets[{i}]', swapped)


def use_safe_h36m_datasets(cfg: Any) -> List[str]:
    """Replace ``type='Human36mDataset'`` by ``'SafeHuman36mDataset'`` in every dataloader.

    Looks at ``{train,val,test}_dataloader.dataset`` and the datasets wrapped inside them
    (``dataset=...`` of a ``RepeatDataset``-like wrapper, ``datasets=[...]`` of a
    ``ConcatDataset`` / ``CombinedDataset``). Changes ``cfg`` in place.

    Args:
        cfg: the full config (``mmengine.Config`` or dict).

    Returns:
        The config paths whose type was swapped, e.g. ``['test_dataloader.dataset']``.
    """
    swapped: List[str] = []
    for name in DATALOADERS:
        loader = cfg.get(name)
        if isinstance(loader, dict):
            _swap_in(loader.get('dataset'), f'{name}.dataset', swapped)
    return swapped
