# Unsup3D + temporal discriminator + extra 2D through the paper's 2D domain adapter.
# Extra data: data/pybullet_mocap/coco17_synthetic_train.json, the *training* frames of the
# shipped mocap rendered as COCO-17 keypoints through 2 new cameras per clip with a synthetic
# domain shift (annotator-like hips, built face joints, detector-like noise, failures and missing
# joints; tools/dataset_converters/mocap_to_coco.py). A SYNTHETIC shift, not in-the-wild data.
# Each batch of 256 real Human3.6M-17 2D poses gets 256 extra COCO poses drawn at random (no
# correspondence); the adapter maps them into Human3.6M-17 2D and is trained to fool the 2D
# discriminator; its output joins the lifter's cycle. Otherwise identical to
# unsup3d_reslifter-2ddisc-tdisc_1xb256-100e_pybullet-mocap.py. Results in README.md.
_base_ = ['./unsup3d_reslifter-2ddisc-tdisc_1xb256-100e_pybullet-mocap.py']

model = dict(
    adapter=dict(type='PoseDomainAdapter2D', in_keypoints=17, out_keypoints=17,
                 with_scores=True, width=256, num_layers=2, init_mapping='coco_to_h36m'),
    adapter_gan_loss=dict(type='GANLoss', gan_type='vanilla', loss_weight=1.0,
                          loss_name='loss_adapter'),
    adapter_reg_loss=dict(type='AdapterResidualLoss', loss_weight=1.0),
)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='WithExtra2DDataset',
        dataset={{_base_.train_dataloader.dataset}},
        extra=dict(type='CocoKeypoints2DDataset',
                   ann_file='data/pybullet_mocap/coco17_synthetic_train.json',
                   min_keypoints=8),
        seed=0))
# The adapter is trained in the generator step, under the lifter's optimizer.
optim_wrapper = dict(lifter=dict(modules=['lifter', 'adapter']))
