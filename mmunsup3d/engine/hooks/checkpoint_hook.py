"""Checkpoints that are complete or absent, and rotation that never leaves none behind."""
import os
import os.path as osp
import tempfile
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook

from mmpose.registry import HOOKS

__all__ = ['AtomicCheckpointHook']

# Suffix of a checkpoint being written; renamed to the final name once complete.
PARTIAL_SUFFIX = '.part'


def _write_text_atomic(path: str, text: str) -> None:
    """Write ``path`` so that a reader sees the old or the new content, never a part."""
    folder = osp.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path) + '.')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook`` (same options) whose files survive an interrupted save.

    MMEngine 0.10.7's ``_save_checkpoint_with_step`` deletes the oldest kept checkpoint
    (``max_keep_ckpts``) *before* writing the new one, writes the new one in place, and then
    rewrites ``last_checkpoint``: with ``max_keep_ckpts=1`` a run killed during the write
    leaves no complete checkpoint, and ``last_checkpoint`` names a deleted file. Here:

    1. the checkpoint is written to ``<name>.part`` and renamed to ``<name>`` once complete
       (local folders; other backends write in place, as MMEngine does);
    2. ``last_checkpoint`` is then replaced atomically;
    3. only then is the outdated checkpoint deleted.

    So at every moment ``last_checkpoint`` names a complete file. The bookkeeping
    (``keep_ckpt_ids`` in the message hub, hence in the checkpoint) is MMEngine's.
    """

    def _rotate(self, runner, step: int) -> Optional[int]:
        """Record ``step`` among the kept checkpoints; return the step that falls out."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids and
                                        self.keep_ckpt_ids[-1] == step):
            return None
        outdated = None
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            outdated = self.keep_ckpt_ids.popleft()
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        return outdated

    def _remove_step(self, step: int) -> None:
        path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
        if path == self.last_ckpt:  # a resumed run saving the same step again
            return
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # checkpoints saved by DeepSpeed are folders
            self.file_backend.rmtree(path)

    def _write(self, runner, filename: str, meta: dict) -> None:
        """``runner.save_checkpoint`` to ``filename``, through a partial file if local."""
        local = isinstance(self.file_backend, LocalBackend)
        name = filename + PARTIAL_SUFFIX if local else filename
        runner.save_checkpoint(
            self.out_dir,
            name,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if local and is_main_process():
            os.replace(osp.join(self.out_dir, name), osp.join(self.out_dir, filename))

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        outdated = self._rotate(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        self._write(runner, filename, meta)
        if not is_main_process():
            return
        _write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if outdated is not None:
            self._remove_step(outdated)
