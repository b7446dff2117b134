# Runtime shared by every mmunsup3d config (MMPose conventions; our types live in MMPose's
# registries, so the default scope is mmpose).
default_scope = 'mmpose'
custom_imports = dict(imports=['mmunsup3d'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # MMEngine's CheckpointHook, except that a file is complete or absent and the oldest one is
    # deleted only after the new one is written (an interrupted save leaves one to resume from).
    checkpoint=dict(type='AtomicCheckpointHook', interval=10, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Random-number states in every checkpoint, restored by --resume (bit-identical resume).
    # It never draws a random number, so it leaves a run's random streams unchanged. In
    # default_hooks (merged by key) rather than custom_hooks (a list a config would replace).
    # tools/train.py --cfg-options default_hooks.rng_state=None turns it off.
    rng_state=dict(type='RNGStateHook'),
    # Checkpoints of distributed (MMSeparateDistributedDataParallel) runs keep the bare
    # model's keys, so they load into single-process models and resume into wrapped ones.
    bare_state_dict=dict(type='BareStateDictHook'),
)

# dist_cfg.backend is switched to gloo by tools/train.py and tools/test.py when CUDA is absent.
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True, num_digits=6)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
