from mmengine.config import Config

from mmunsup3d.engine.launch import propagate_data_root


def test_data_root_override_reaches_every_dataset():
    cfg = Config(dict(
        data_root='a/',
        train_dataloader=dict(dataset=dict(type='X', data_root='a/')),
        val_dataloader=dict(dataset=dict(type='Wrapper', dataset=dict(type='X', data_root='a/'))),
        test_dataloader=None))
    propagate_data_root(cfg, {'data_root': 'b/'})
    assert cfg.train_dataloader.dataset.data_root == 'b/'
    assert cfg.val_dataloader.dataset.dataset.data_root == 'b/'
    # Without the option nothing changes.
    propagate_data_root(cfg, {'train_cfg.max_epochs': 1})
    assert cfg.train_dataloader.dataset.data_root == 'b/'
