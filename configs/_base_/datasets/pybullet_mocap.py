# The embedded default data: real motion capture shipped in pybullet (DeepMimic clips),
# converted to Human3.6M-17 joints (data/pybullet_mocap/README.md) and seen through fixed,
# Human3.6M-like cameras. Training: 2D only, the first ~80 % of every clip through 4 cameras.
# Test: the last 20 % of every clip (after a 10-frame gap) through 2 cameras never used in
# training, with camera-frame 3D ground truth for MMPose's MPJPE metric.
dataset_type = 'MocapProjectionDataset'
data_root = ''
data_file = 'data/pybullet_mocap/h36m17_mocap.npz'
mocap_split = dict(test_fraction=0.2, gap_frames=10, num_train_cameras=4, num_test_cameras=2,
                   seed=0)

train_dataloader = dict(
    batch_size=512,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='unsup3d_collate'),
    dataset=dict(
        type=dataset_type, data_root=data_root, data_file=data_file, split='train',
        **mocap_split))
val_dataloader = dict(
    batch_size=512,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='unsup3d_collate'),
    dataset=dict(
        type=dataset_type, data_root=data_root, data_file=data_file, split='test',
        **mocap_split))
test_dataloader = val_dataloader

# MMPose's own metric, unchanged. Values are in metres (tools/test.py prints millimetres).
# ChiralityRate (label-free, predictions only): the fraction of mirror-handed poses, ~3 % for
# the ground truth here and ~97 % for a depth-mirrored model.
val_evaluator = [
    dict(type='MPJPE', mode='n-mpjpe'),
    dict(type='MPJPE', mode='p-mpjpe'),
    dict(type='MPJPE', mode='mpjpe'),
    dict(type='ChiralityRate'),
]
test_evaluator = val_evaluator
