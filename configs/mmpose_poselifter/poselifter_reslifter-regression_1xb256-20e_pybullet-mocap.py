# Supervised reference inside MMPose itself: our ResidualLifter as the backbone of MMPose's
# `PoseLifter`, with MMPose's `ImagePoseLifting` codec, `TemporalRegressionHead`, data pipeline
# (`GenerateTarget` + `PackPoseInputs`), `Human36mDataset` and `MPJPE` metric, all unchanged.
# It trains on 3D labels (a supervised upper bound, not the unsupervised method).
#
# Data: any Human3.6M layout as MMPose's Human36mDataset reads it:
#   {data_root}/annotation_body3d/fps50/h36m_{train,test}.npz (+ annotation_body3d/cameras.pkl)
# The default root is the Human3.6M-format export of the shipped pybullet motion capture:
#   python tools/dataset_converters/make_h36m_fixture.py --out data/h36m_fixture
# Point it at real Human3.6M (MMPose's preprocessing) by overriding every dataset's data_root:
#   python tools/train.py <this config> --cfg-options \
#       train_dataloader.dataset.data_root=data/h36m/ val_dataloader.dataset.data_root=data/h36m/ \
#       test_dataloader.dataset.data_root=data/h36m/
# (`data_root` below is substituted when the file is parsed, so overriding it alone is not
# enough.) Structure as MMPose's image-pose-lift_tcn_8xb64-200e_h36m.py.
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/h36m_fixture/'
dataset_type = 'Human36mDataset'
max_epochs = 20
lifter_width = 1024

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Martinez et al.: Adam 1e-3 with exponential decay.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [dict(type='ExponentialLR', gamma=0.96, by_epoch=True)]
auto_scale_lr = dict(base_batch_size=256)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    # No save_best: the validation split is the test split, and picking checkpoints on it
    # would report a tuned-on-test number.
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1))

# Codec: MMPose's own. 2D inputs are normalised with image-level statistics of 1000x1000 px
# Human3.6M-like cameras (centre 500 px, spread 100 px) instead of MMPose's per-joint statistics
# of the real Human3.6M training set; 3D targets are root-relative metres (root removed).
codec = dict(
    type='ImagePoseLifting',
    num_keypoints=17,
    root_index=0,
    remove_root=True,
    keypoints_mean=[[500.0, 500.0]] * 17,
    keypoints_std=[[100.0, 100.0]] * 17)

model = dict(
    type='PoseLifter',
    # Our Martinez-style residual MLP in MMPose backbone mode: (B, 17*2, 1) -> ((B, W, 1), ).
    backbone=dict(
        type='ResidualLifter',
        num_keypoints=17,
        in_channels=2,
        width=lifter_width,
        num_blocks=4,
        dropout=0.25,
        as_backbone=True),
    head=dict(
        type='TemporalRegressionHead',
        in_channels=lifter_width,
        num_joints=16,
        loss=dict(type='MSELoss'),
        decoder=codec))

train_pipeline = [
    dict(type='GenerateTarget', encoder=codec),
    dict(
        type='PackPoseInputs',
        meta_keys=('id', 'category_id', 'target_img_path', 'flip_indices', 'target_root',
                   'target_root_index', 'target_mean', 'target_std'))
]
val_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file='annotation_body3d/fps50/h36m_train.npz',
        seq_len=1,
        causal=True,
        keypoint_2d_src='gt',
        data_root=data_root,
        data_prefix=dict(img='images/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        ann_file='annotation_body3d/fps50/h36m_test.npz',
        seq_len=1,
        causal=True,
        keypoint_2d_src='gt',
        data_root=data_root,
        data_prefix=dict(img='images/'),
        pipeline=val_pipeline))
test_dataloader = val_dataloader

# MMPose's metric, unchanged (metres; tools/test.py prints millimetres).
val_evaluator = [
    dict(type='MPJPE', mode='mpjpe'),
    dict(type='MPJPE', mode='p-mpjpe'),
    dict(type='MPJPE', mode='n-mpjpe'),
]
test_evaluator = val_evaluator
