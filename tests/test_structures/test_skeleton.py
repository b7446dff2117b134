"""Skeleton tables are consistent with each other and with MMPose's Human3.6M meta."""
from mmunsup3d.structures import (H36M_FLIP_PAIRS, H36M_KEYPOINT_NAMES, H36M_PARENTS,
                                  H36M_SKELETON, H36M_SYMMETRIC_BONES)


def test_tables_agree():
    assert len(H36M_KEYPOINT_NAMES) == len(H36M_PARENTS) == 17
    for a, b in H36M_FLIP_PAIRS:
        na, nb = H36M_KEYPOINT_NAMES[a], H36M_KEYPOINT_NAMES[b]
        assert na.split('_', 1)[1] == nb.split('_', 1)[1] and na != nb
    # every skeleton link joins a joint to its parent
    assert {tuple(sorted(link)) for link in H36M_SKELETON} == \
        {tuple(sorted((p, j))) for j, p in enumerate(H36M_PARENTS) if p >= 0}
    for (pa, a), (pb, b) in H36M_SYMMETRIC_BONES:
        assert H36M_PARENTS[a] == pa and H36M_PARENTS[b] == pb


def test_matches_mmpose_meta():
    from mmunsup3d.datasets.pose_array_dataset import h36m_metainfo
    meta = h36m_metainfo()
    names = [meta['keypoint_id2name'][i] for i in range(17)]
    assert len(names) == 17
    flip = {tuple(sorted(p)) for p in meta['flip_pairs']} if 'flip_pairs' in meta else None
    if flip is not None:
        assert flip == {tuple(sorted(p)) for p in H36M_FLIP_PAIRS}
