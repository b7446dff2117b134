# As unsup3d_reslifter-2ddisc_8xb64-200e_h36m.py, with detected 2D keypoints for training and
# testing (the "predicted 2D" rows of the papers). The file names are MMPose's (its CPN
# detections, fine-tuned on Human3.6M, aligned row by row with the annotation files); any
# detector's (N, 17, 3) [x, y, score] .npy in that alignment works. The 3D ground truth of the
# test set still comes from the annotation file.
_base_ = ['./unsup3d_reslifter-2ddisc_8xb64-200e_h36m.py']

train_dataloader = dict(
    dataset=dict(
        keypoint_2d_src='detection',
        keypoint_2d_det_file='joint_2d_det_files/cpn_ft_h36m_dbb_train.npy'))
val_dataloader = dict(
    dataset=dict(
        keypoint_2d_src='detection',
        keypoint_2d_det_file='joint_2d_det_files/cpn_ft_h36m_dbb_test.npy'))
test_dataloader = val_dataloader
