# Semi-supervised Human3.6M: 3D labels on 10 % of subject S1's training frames (a scale-aligned
# 3D loss on those rows), everything else (the rest of S1, S5, S6, S7, S8) through the
# unsupervised losses only. Set labelled_fraction=0.01 for the 1 % setting. No Human3.6M run
# exists here; otherwise identical to unsup3d_reslifter-2ddisc_8xb64-200e_h36m.py.
_base_ = ['./unsup3d_reslifter-2ddisc_8xb64-200e_h36m.py']

model = dict(sup_loss=dict(type='ScaleAlignedMPJPELoss', loss_weight=1.0))
train_dataloader = dict(
    dataset=dict(with_3d=True, labelled_fraction=0.1, labelled_subjects=['S1'], labelled_seed=0))
