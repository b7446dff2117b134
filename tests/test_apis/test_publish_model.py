"""tools/misc/publish_model.py: stripping, naming and byte-reproducible output."""
import hashlib
import os

import pytest
import torch

from helpers import load_tool

publish_model = load_tool('misc', 'publish_model.py')


def _training_ckpt(path):
    torch.save({
        'meta': {'epoch': 3},
        'state_dict': {'lifter.w': torch.ones(4, 3), 'discriminator.w': torch.zeros(2)},
        'optimizer': {'state': {}},
    }, path)


def _sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_publish_is_reproducible_and_named_by_hash(tmp_path):
    src = str(tmp_path / 'epoch_3.pth')
    _training_ckpt(src)
    names = []
    for run in range(2):
        out = tmp_path / f'run{run}'
        final = publish_model.publish(src, str(out / 'model.pth'), lifter_only=True, fp16=True,
                                      date='20261125')
        sha = _sha(final)
        assert os.path.basename(final) == f'model_20261125-{sha[:8]}.pth'
        assert os.listdir(out) == [os.path.basename(final)]  # no temporary left behind
        names.append(os.path.basename(final))
    # Same input -> same bytes, whatever temporary name was used on the way.
    assert names[0] == names[1]
    ckpt = torch.load(final, weights_only=True)
    assert set(ckpt) == {'meta', 'state_dict'}
    assert list(ckpt['state_dict']) == ['lifter.w']
    assert ckpt['state_dict']['lifter.w'].dtype == torch.float16


def test_lifter_only_needs_lifter_weights(tmp_path):
    src = str(tmp_path / 'x.pth')
    torch.save({'state_dict': {'discriminator.w': torch.zeros(2)}}, src)
    with pytest.raises(KeyError, match='lifter'):
        publish_model.publish(src, str(tmp_path / 'out.pth'), lifter_only=True)
    assert not [p for p in os.listdir(tmp_path) if p.startswith('out')]
