"""Prepare a checkpoint for release, as OpenMMLab does.

``python tools/misc/publish_model.py IN.pth OUT.pth [--lifter-only] [--fp16]``

Keeps only ``meta`` and ``state_dict`` (no optimizer, scheduler or message hub), optionally
drops everything but the lifter (inference needs nothing else) and stores floats in half
precision, then renames the file ``OUT_<YYYYMMDD>-<first 8 hex of sha256>.pth``. The file is
written to a temporary name first, so a failure never leaves a complete-looking file.
"""
import argparse
import datetime
import os
import os.path as osp
import tempfile
from typing import Dict

import torch

from mmunsup3d.utils.zoo import sha256sum
from mmunsup3d.utils.checkpoint import safe_torch_load


def strip_checkpoint(ckpt: Dict, lifter_only: bool = False, fp16: bool = False) -> Dict:
    """Return ``{'meta', 'state_dict'}`` of a training checkpoint."""
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise KeyError('checkpoint has no "state_dict"')
    state = ckpt['state_dict']
    if lifter_only:
        state = {k: v for k, v in state.items() if k.startswith('lifter.')}
        if not state:
            raise KeyError('lifter_only: the checkpoint has no "lifter.*" weights')
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    meta = dict(ckpt.get('meta', {}))
    # The config text and dataset meta stay (provenance); run-time bookkeeping goes.
    for key in ('hook_msgs', 'message_hub'):
        meta.pop(key, None)
    return {'meta': meta, 'state_dict': state}


def publish(in_file: str, out_file: str, lifter_only: bool = False, fp16: bool = False,
            date: str = '') -> str:
    """Strip, hash and name a checkpoint; returns the final path.

    ``in_file`` is read with :func:`safe_torch_load` (``weights_only=True`` and the
    allow-list, also under ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``).

    Raises:
        UnsafeCheckpointError: ``in_file`` references objects outside the allow-list.
        RuntimeError: ``in_file`` is corrupt or not a checkpoint.
        KeyError: it has no ``state_dict`` (or, with ``lifter_only``, no ``lifter.*`` key).
        Nothing is written in any of these cases.
    """
    ckpt = strip_checkpoint(safe_torch_load(in_file), lifter_only, fp16)
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.pth.part', dir=out_dir)
    try:
        # Through a file object: torch.save names the zip records after a *path's* basename,
        # so saving to the random temporary name made the sha256 differ run to run.
        with os.fdopen(fd, 'wb') as f:
            torch.save(ckpt, f)
        sha = sha256sum(tmp)
        stem = osp.splitext(out_file)[0]
        date = date or datetime.date.today().strftime('%Y%m%d')
        final = f'{stem}_{date}-{sha[:8]}.pth'
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a release file is world-readable
        os.replace(tmp, final)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return final


def main() -> None:
    parser = argparse.ArgumentParser(description='Strip and name a checkpoint for release')
    parser.add_argument('in_file', help='input checkpoint')
    parser.add_argument('out_file', help='output stem, e.g. checkpoints/NAME.pth')
    parser.add_argument('--lifter-only', action='store_true',
                        help='keep only the lifter (drop discriminators)')
    parser.add_argument('--fp16', action='store_true', help='store floats in half precision')
    parser.add_argument('--date', default='', help='YYYYMMDD for the name (default: today)')
    args = parser.parse_args()
    final = publish(args.in_file, args.out_file, args.lifter_only, args.fp16, args.date)
    print(f'{final}\nsha256: {sha256sum(final)}')


if __name__ == '__main__':
    main()
