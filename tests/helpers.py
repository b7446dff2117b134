"""Small configs shared by the tests (fast CPU runs on a slice of the shipped mocap)."""
import importlib.util
import os.path as osp
import uuid
from types import ModuleType

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(REPO, 'configs', 'unsup3d',
                       'unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py')


def load_tool(*parts: str) -> ModuleType:
    """Import a script under ``tools/`` (not a package) by its path parts."""
    path = osp.join(REPO, 'tools', *parts)
    spec = importlib.util.spec_from_file_location(osp.splitext(parts[-1])[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_cfg(work_dir: str, max_epochs: int = 2, clips=('walk', 'run'),
             config: str = DEMO_CONFIG) -> Config:
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    # Runners built within the same second would otherwise share MMEngine's global instances.
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:12]}'
    cfg.model.lifter.width = 32
    cfg.model.lifter.num_blocks = 1
    for name in ('discriminator', 'temporal_discriminator'):
        if cfg.model.get(name):
            cfg.model[name].width = 32
            cfg.model[name].num_blocks = 1
    for name in ('elevation_net', 'adapter'):
        if cfg.model.get(name):
            cfg.model[name].width = 16
    cfg.train_dataloader.batch_size = 64
    train_set = cfg.train_dataloader.dataset
    if train_set.type == 'WithExtra2DDataset':
        train_set = train_set.dataset
    train_set.clips = list(clips)
    cfg.val_dataloader.dataset.clips = list(clips)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.max_epochs = max_epochs
    cfg.train_cfg.val_interval = max_epochs
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.max_keep_ckpts = 5
    cfg.default_hooks.logger.interval = 1
    return cfg


def standing_pose(knee_forward: float = 0.1) -> 'torch.Tensor':
    """``(17, 3)`` H36M-17 pose in camera coordinates (x right, y down, z forward) of a person
    facing the camera (left hip at +x), knees bent ``knee_forward`` m towards the camera."""
    import torch
    from mmunsup3d.structures import H36M_KEYPOINT_NAMES
    p = {
        'pelvis': (0.0, 0.0, 0.0), 'right_hip': (-0.1, 0.0, 0.0),
        'right_knee': (-0.1, 0.4, -knee_forward), 'right_ankle': (-0.1, 0.8, 0.0),
        'left_hip': (0.1, 0.0, 0.0), 'left_knee': (0.1, 0.4, -knee_forward),
        'left_ankle': (0.1, 0.8, 0.0), 'spine': (0.0, -0.25, 0.0), 'thorax': (0.0, -0.5, 0.0),
        'neck_nose': (0.0, -0.6, -0.05), 'head_top': (0.0, -0.75, 0.0),
        'left_shoulder': (0.2, -0.5, 0.0), 'left_elbow': (0.25, -0.25, 0.0),
        'left_wrist': (0.25, 0.0, 0.0), 'right_shoulder': (-0.2, -0.5, 0.0),
        'right_elbow': (-0.25, -0.25, 0.0), 'right_wrist': (-0.25, 0.0, 0.0)}
    return torch.tensor([p[n] for n in H36M_KEYPOINT_NAMES], dtype=torch.float64)


def committed_weights(entry: dict) -> str:
    """Path of the committed copy of a metafile entry's ``Weights`` URL
    (``checkpoints/<file name>``)."""
    import urllib.parse
    name = osp.basename(urllib.parse.urlparse(entry['Weights']).path)
    return osp.join(REPO, 'checkpoints', name)
