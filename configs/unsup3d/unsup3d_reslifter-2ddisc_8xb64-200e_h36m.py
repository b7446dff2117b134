# Chen et al. (CVPR 2019) on Human3.6M, with the hyper-parameters of the public reproduction
# (Yu et al., ICCV 2021): residual lifter 1024 x 4 blocks, 2D discriminator 1024 x 3 blocks,
# Adam 2e-4 (both networks), weight decay 1e-4, LR x0.95 per epoch, batch 512 = 8 GPUs x 64,
# 200 epochs. Protocol: train on S1, S5, S6, S7, S8 with 2D only (ground-truth 2D here; see the
# "-det" sibling for detections), test on S9, S11 with MMPose's MPJPE metric (N-MPJPE, P-MPJPE,
# MPJPE, each also per action). Data: MMPose's Human3.6M files, see docs/h36m.md.
#
# 8 GPUs:   torchrun --nproc_per_node 8 tools/train.py <this config> --launcher pytorch
# Smoke run (one epoch on 1 % of the training poses, see docs/h36m.md):
#   python tools/train.py <this config> --cfg-options train_cfg.max_epochs=1 \
#       train_dataloader.dataset.subset_frac=0.01 val_dataloader.dataset.subset_frac=0.01
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/unsup3d_reslifter_2ddisc.py',
]

dataset_type = 'H36MLiftingDataset'
data_root = 'data/h36m/'
train_subjects = ['S1', 'S5', 'S6', 'S7', 'S8']
test_subjects = ['S9', 'S11']
max_epochs = 200
val_interval = 10

model = dict(
    lifter=dict(width=1024, num_blocks=4),
    discriminator=dict(width=1024, num_blocks=3),
)
optim_wrapper = dict(
    lifter=dict(optimizer=dict(type='Adam', lr=2e-4, weight_decay=1e-4)),
    discriminator=dict(optimizer=dict(type='Adam', lr=2e-4, weight_decay=1e-4)),
)
param_scheduler = dict(
    lifter=[dict(type='ExponentialLR', gamma=0.95, by_epoch=True)],
    discriminator=[dict(type='ExponentialLR', gamma=0.95, by_epoch=True)],
)
# `--auto-scale-lr`-style scaling stays off: 2e-4 is the LR of the 512 batch.
auto_scale_lr = dict(base_batch_size=512, enable=False)

# Epoch-based, as the paper's schedule (the LR decays per epoch). MMEngine's
# EpochBasedTrainLoop has no iteration cap: shorten with train_cfg.max_epochs and/or
# train_dataloader.dataset.subset_frac (docs/h36m.md).
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=val_interval, max_keep_ckpts=3),
)

dataset_common = dict(
    type=dataset_type,
    data_root=data_root,
    camera_param_file='annotation_body3d/cameras.pkl',
    keypoint_2d_src='gt',
    seq_len=1,
    causal=True,
)
# num_workers=0: batches are whole-array slices (~20 us per batch of 64), so worker processes
# only add inter-process copies; benchmarks/h36m_loader_throughput.py measured 3.4 M poses/s
# in-process vs 0.09 M with 2 workers (and 28 k vs 9 k test samples/s).
train_dataloader = dict(
    batch_size=64,  # per GPU
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='unsup3d_collate'),
    dataset=dict(
        ann_file='annotation_body3d/fps50/h36m_train.npz', subjects=train_subjects,
        **dataset_common),
)
val_dataloader = dict(
    batch_size=512,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    # No padding of the last batch across GPUs: every test pose is counted once.
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    collate_fn=dict(type='unsup3d_collate'),
    dataset=dict(
        ann_file='annotation_body3d/fps50/h36m_test.npz', subjects=test_subjects,
        test_mode=True, **dataset_common),
)
test_dataloader = val_dataloader

# MMPose's own metric, unchanged: values in metres (tools/test.py prints millimetres), plus one
# entry per action category parsed from the image names (e.g. `N-MPJPE_Walking`), and the
# label-free ChiralityRate (fraction of mirror-handed predicted poses, from predictions only).
val_evaluator = [
    dict(type='MPJPE', mode='n-mpjpe'),
    dict(type='MPJPE', mode='p-mpjpe'),
    dict(type='MPJPE', mode='mpjpe'),
    dict(type='ChiralityRate'),
]
test_evaluator = val_evaluator
