# Unsupervised 3D lifting (Chen et al., CVPR 2019) on Human3.6M: the paper's setting.
# Everything lives in the MMPose-style config named below; this file only fixes where the data
# is. docs/h36m.md explains how to prepare `data/h36m/` with MMPose's converter.
#
#   torchrun --nproc_per_node 8 tools/train.py configs/unsup3d_h36m.py --launcher pytorch
#   python tools/test.py configs/unsup3d_h36m.py work_dirs/unsup3d_h36m/epoch_200.pth
#
# Smoke run (1 epoch on 1 % of the poses):
#   python tools/train.py configs/unsup3d_h36m.py --cfg-options train_cfg.max_epochs=1 \
#       train_dataloader.dataset.subset_frac=0.01 val_dataloader.dataset.subset_frac=0.01
#
# MMEngine substitutes variables when a file is parsed, so `--cfg-options data_root=...` does
# NOT move the datasets: edit `data_root` here, symlink `data/h36m`, or override
# `{train,val,test}_dataloader.dataset.data_root`.
_base_ = ['./unsup3d/unsup3d_reslifter-2ddisc_8xb64-200e_h36m.py']

data_root = 'data/h36m/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
