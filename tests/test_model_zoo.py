"""The committed zoo entries: configs build, hashes match, and the demo model is useful."""
import hashlib
import os.path as osp
import re

import numpy as np
import pytest
import torch
import yaml

from helpers import REPO, committed_weights
from mmunsup3d.apis import init_lifter, lift_keypoints
from mmunsup3d.datasets import MocapProjectionDataset


def _sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def _models():
    index = yaml.safe_load(open(osp.join(REPO, 'model-index.yml')))
    models = []
    for rel in index['Import']:
        meta = yaml.safe_load(open(osp.join(REPO, rel)))
        models += meta['Models']
    return models


MODELS = _models()
COMMITTED = [m for m in MODELS if osp.isfile(committed_weights(m))]


def test_index_lists_models_with_committed_weights():
    assert MODELS and COMMITTED


@pytest.mark.parametrize('entry', MODELS, ids=lambda m: m['Name'])
def test_entry_config_builds_and_hash_matches(entry):
    from mmengine.config import Config
    from mmpose.registry import MODELS as REG
    cfg = Config.fromfile(osp.join(REPO, entry['Config']))
    REG.build(cfg.model)
    sha = entry['Metadata']['sha256']
    assert re.fullmatch(r'[0-9a-f]{64}', sha)
    # OpenMMLab naming: <name>_<YYYYMMDD>-<sha256[:8]>.pth
    assert osp.basename(entry['Weights']).endswith(f'-{sha[:8]}.pth')
    path = committed_weights(entry)
    if osp.isfile(path):
        assert _sha256(path) == sha
        assert osp.getsize(path) <= 5 * 1024 * 1024


def test_model_zoo_md_matches_metafiles():
    text = open(osp.join(REPO, 'model_zoo.md')).read()
    for entry in MODELS:
        assert entry['Name'] in text and entry['Config'] in text
        assert entry['Metadata']['sha256'] in text
        for res in entry['Results']:
            for metric, value in res['Metrics'].items():
                assert f'{value:.1f}' in text, (metric, value)


def _nmpjpe(pred, gt):
    scale = (pred * gt).sum((1, 2)) / (pred * pred).sum((1, 2))
    return np.linalg.norm(pred * scale[:, None, None] - gt, axis=-1).mean() * 1000


@pytest.mark.parametrize('entry', COMMITTED, ids=lambda m: m['Name'])
def test_committed_model_beats_flat_depth_on_held_out_mocap(entry):
    model = init_lifter(osp.join(REPO, entry['Config']), committed_weights(entry))
    test = MocapProjectionDataset(split='test')
    kpts, gt = test.arrays['keypoints_2d'], test.arrays['keypoints_3d']
    pred = lift_keypoints(model, kpts)
    x = model.normalize(torch.from_numpy(kpts)).numpy()
    flat = np.concatenate([x, np.zeros_like(x[..., :1])], -1)
    ours, base = _nmpjpe(pred, gt), _nmpjpe(flat, gt)
    assert ours < base, (ours, base)
    # The number in the metafile is what this checkpoint gives (fp16 weights: 0.5 mm slack).
    listed = entry['Results'][0]['Metrics']['N-MPJPE']
    assert abs(ours - listed) < 0.5, (ours, listed)


def test_metafile_follows_mmpose_conventions():
    from mmunsup3d.utils.zoo import ZOO_BASE_URL, resolve_model
    aliases = []
    for entry in MODELS:
        # MMPose puts URLs in Weights: the zoo's base URL + the committed file's name.
        name = osp.basename(entry['Weights'])
        assert entry['Weights'] == f'{ZOO_BASE_URL}/{name}'
        assert osp.isfile(committed_weights(entry)), name
        assert osp.isfile(osp.join(REPO, entry['README']))
        alias = entry['Alias']
        aliases += [alias] if isinstance(alias, str) else list(alias)
        assert resolve_model(aliases[-1])['name'] == entry['Name']
    assert len(aliases) == len(set(aliases)), aliases
    # The first entry is the recommended one, and the docs say so.
    first = MODELS[0]
    for doc in ('README.md', 'model_zoo.md'):
        text = open(osp.join(REPO, doc)).read()
        assert f'recommended' in text and first['Name'] in text, doc


def test_unknown_alias_lists_names_and_aliases():
    from mmunsup3d.utils.zoo import resolve_model
    # Every alias of an entry is listed (the recommended entry has two).
    with pytest.raises(KeyError,
                       match=r'Unknown model "unsup3d-nope".*'
                             r'\(alias unsup3d, unsup3d-tdisc-lsgan\)'):
        resolve_model('unsup3d-nope')
