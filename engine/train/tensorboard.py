"""TensorBoard event files for every training run (``runs/ID/tensorboard/``), as RepDistiller and
mdistiller users expect: ``tensorboard --logdir WORKSPACE/runs``.

Optional: written only when the ``tensorboard`` package is installed (the ``tensorboard`` extra,
which ``make run`` installs). Per epoch: every loss term (``loss/NAME``), the accuracies in percent
(``accuracy/train``, ``accuracy/test``), ``lr`` and ``images_per_s``; once per writer, the run's
config as text. An epoch is logged after its checkpoint and resume state are on disk, so a
resumed run continues the curves without a duplicated step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.jobs import JobContext
from engine.train.rundir import RunDir

#: the sub-folder of a run directory holding its event files
FOLDER = "tensorboard"

#: run directory -> open SummaryWriter, closed after the run's last epoch; a process trains one run at
#: a time, so opening a writer closes any other left open by a run that was cancelled or failed
_writers: dict[Path, Any] = {}
_missing_noted = False


def _summary_writer(ctx: JobContext) -> Any | None:
    """The SummaryWriter class, or None (said once per process) when tensorboard is not installed."""
    global _missing_noted
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        if not _missing_noted:
            _missing_noted = True
            ctx.log("TensorBoard event files are off: install the tensorboard extra (pip install 'kdcam[tensorboard]')")
        return None
    return SummaryWriter


def log_epoch(run: RunDir, record: dict[str, Any], ctx: JobContext) -> None:
    """Write one finished epoch's scalars to the run's event files (a no-op without tensorboard, and on
    the ranks of a distributed run that do not write the run directory)."""
    if not run.writer:
        return
    writer = _writers.get(run.path)
    if writer is None:
        writer_class = _summary_writer(ctx)
        if writer_class is None:
            return
        for stale in list(_writers):
            _writers.pop(stale).close()
        writer = _writers[run.path] = writer_class(log_dir=str(run.path / FOLDER))
        config = json.dumps(run.config, indent=2, default=str)
        writer.add_text("config", "```\n" + config + "\n```", global_step=int(record["epoch"]))
    epoch = int(record["epoch"])
    for term, value in record["losses"].items():
        writer.add_scalar(f"loss/{term}", value, epoch)
    writer.add_scalar("accuracy/train", 100 * record["train_acc"], epoch)
    writer.add_scalar("accuracy/test", 100 * record["test_acc"], epoch)
    if "val_acc" in record:  # runs with a validation split (the one that chooses the best epoch)
        writer.add_scalar("accuracy/validation", 100 * record["val_acc"], epoch)
    writer.add_scalar("lr", record["lr"], epoch)
    writer.add_scalar("images_per_s", record["images_per_s"], epoch)
    writer.flush()
    if epoch >= int(record["epochs"]):
        _writers.pop(run.path).close()
