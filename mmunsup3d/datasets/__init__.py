from .cameras import (camera_to_pixel, look_at_camera, sample_h36m_like_camera,
                      world_to_camera)
from .coco_keypoints_2d import CocoKeypoints2DDataset, WithExtra2DDataset, coco_metainfo
from .h36m_dataset import (H36M_CAMERA_IDS, H36M_TEST_SUBJECTS, H36M_TRAIN_SUBJECTS,
                           H36MLiftingDataset, parse_h36m_videos)
from .keypoints_2d import Keypoints2DDataset
from .mocap_dataset import (MOCAP_MOTION_GROUPS, MocapProjectionDataset, motion_folds,
                            resolve_data_file)
from .pose_array_dataset import (PoseArrayDataset, h36m_metainfo, subsample_labelled,
                                 unsup3d_collate)
from .safe_h36m import SafeHuman36mDataset, load_camera_param, use_safe_h36m_datasets

__all__ = [
    'PoseArrayDataset', 'MocapProjectionDataset', 'motion_folds', 'MOCAP_MOTION_GROUPS',
    'unsup3d_collate', 'h36m_metainfo', 'subsample_labelled', 'resolve_data_file',
    'look_at_camera', 'sample_h36m_like_camera',
    'world_to_camera', 'camera_to_pixel', 'H36MLiftingDataset', 'parse_h36m_videos',
    'H36M_TRAIN_SUBJECTS', 'H36M_TEST_SUBJECTS', 'H36M_CAMERA_IDS', 'CocoKeypoints2DDataset',
    'WithExtra2DDataset', 'coco_metainfo', 'SafeHuman36mDataset', 'load_camera_param',
    'use_safe_h36m_datasets', 'Keypoints2DDataset'
]
