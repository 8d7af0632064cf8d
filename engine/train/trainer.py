"""Training one model: SGD over a Distiller, evaluation every epoch, checkpoints and resume state.

The loop is the same for teachers (``si``: plain CE) and students (any method). At the end
of every epoch it writes, in this order: the ``-last`` checkpoint, the best checkpoint when
validation accuracy improved (test accuracy when the plan has no validation split),
events.jsonl, then state.pt. A kill therefore loses at most the
epoch in progress, and ``resume`` replays exactly what an uninterrupted run would have done
(the loader's order and augmentation depend on (seed, epoch) only; RNG state is restored).

Under torchrun (DDP) every rank runs this loop: the teacher is replicated in eval mode and
left out of DDP (its parameters and buffers are on DDP's ignore list), the student and the
method's extras form the one DDP module, and each rank trains on its share of every global
batch. Only rank 0 writes; cancellation and non-finite losses are agreed by an all-reduce,
so every rank stops at the same batch.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from engine import distributed
from engine.api.checkpoints import CheckpointMeta
from engine.api.runs import EpochRecord
from engine.checkpoints.store import CheckpointStore
from engine.data import ImageSet
from engine.data.loader import DeviceLoader
from engine.distill import Distiller
from engine.errors import JobCancelled, KdcamError
from engine.events import Epoch
from engine.jobs import JobContext
from engine.train import tensorboard
from engine.train.device import autocast, prepare_model, rng_state, set_rng_state
from engine.train.recipes import Recipe
from engine.train.rundir import RunDir


@dataclass
class FitPlan:
    """Everything one training run needs; the suite and the experiments build these."""

    name: str  # checkpoint name of the best epoch; the last epoch is ``{name}-last``
    role: str  # teacher | student
    method: str
    arch: str
    width: float
    distiller: Distiller
    recipe: Recipe
    train_set: ImageSet
    test_set: ImageSet
    device: torch.device
    seed: int
    teacher_name: str | None = None
    compile: bool = False
    #: ``augment(images, indices, epoch)``, applied to each normalised training batch after the
    #: loader's crop/flip (colour jitter); a function of its arguments only, so resume stays exact
    augment: Callable[[Tensor, Tensor, int], Tensor] | None = None
    #: the checkpoint whose model (a user model's code and arguments) the trained one has
    template: CheckpointMeta | None = None
    #: SyncBatchNorm across ranks (CUDA only: PyTorch's SyncBatchNorm has no CPU kernel)
    sync_bn: bool = False
    #: images held out of training that choose the best epoch (None: the test split chooses), and
    #: how they were drawn (recorded in every checkpoint's metadata)
    val_set: ImageSet | None = None
    validation: dict[str, Any] | None = None
    #: the student's method options that differ from its recipe's (they name the variant, ``kd+std``)
    method_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class FitResult:
    name: str
    run_id: str
    best_accuracy: float  # test accuracy of the epoch the validation split chose
    last_accuracy: float  # test accuracy of the last epoch
    epochs: int
    records: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    val_accuracy: float | None = None  # validation accuracy of the chosen epoch


def fit(plan: FitPlan, run: RunDir, store: CheckpointStore, ctx: JobContext, resume: bool = False) -> FitResult:
    """Train ``plan.distiller`` for the recipe's epochs (or the rest of them when resuming)."""
    recipe, device, here = plan.recipe, plan.device, distributed.current()
    distributed.note_run(run.run_id)
    if recipe.batch_size < here.world_size:
        raise KdcamError(f"batch size {recipe.batch_size} is smaller than the {here.world_size} processes: the batch "
                         "is global and every rank needs at least one image of it; raise --batch-size")
    distiller = prepare_model(plan.distiller, device)  # student and extras: device, channels_last on CUDA
    channels_last = device.type == "cuda"
    train_loader = DeviceLoader(plan.train_set, recipe.batch_size, device, train=True, seed=plan.seed,
                                channels_last=channels_last, rank=here.rank, world_size=here.world_size)
    test_loader = DeviceLoader(plan.test_set, max(recipe.batch_size, 256), device, train=False,
                               channels_last=channels_last, rank=here.rank, world_size=here.world_size)
    val_loader = _validation_loader(plan, max(recipe.batch_size, 256), channels_last)
    model = ddp_module(distiller, device, plan.sync_bn) if here.distributed else distiller
    params = list(distiller.trainable_parameters())
    optimizer = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    step = torch.compile(model) if plan.compile else model
    mixed = autocast(device)

    start, best, records = 0, -1.0, []
    if resume:
        state = distributed.broadcast(run.load_state() if here.main else None)  # any N: the state is global
        distiller.student.load_state_dict(state["student"])
        distiller.load_extras_state_dict(state["extras"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"], device)
        start, best, records = int(state["epoch"]), float(state["best"]), run.events()[: int(state["epoch"])]
        ctx.log(f"{run.run_id}: resuming after epoch {start} of {recipe.epochs}")
    run.set_status("running", f"epoch {start + 1} of {recipe.epochs}")
    began = time.perf_counter() - (records[-1]["elapsed"] if records else 0.0)

    for epoch in range(start + 1, recipe.epochs + 1):
        lr = recipe.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_loader.set_epoch(epoch)
        tick = time.perf_counter()
        losses, train_acc = train_epoch(plan, step, optimizer, train_loader, epoch, mixed, ctx, run)
        seconds = time.perf_counter() - tick
        sync_buffers(distiller)  # rank 0's BN statistics everywhere: one model is evaluated and saved
        test_acc = evaluate(distiller.student, test_loader, mixed, ctx)
        record = {
            "epoch": epoch, "epochs": recipe.epochs, "losses": losses, "train_acc": train_acc,
            "test_acc": test_acc, "lr": lr, "images_per_s": len(plan.train_set) / seconds,
            "elapsed": time.perf_counter() - began,
        }
        score = _select_on(record, distiller.student, val_loader, mixed, ctx)
        records.append(record)
        if here.main:
            _save_checkpoint(store, f"{plan.name}-last", plan, run, record, epoch)
        if score > best:
            best = score
            if here.main:
                _save_checkpoint(store, plan.name, plan, run, record, epoch)
        run.write_events(records)
        run.save_state({
            "epoch": epoch, "best": best, "student": distiller.student.state_dict(),
            "extras": distiller.extras_state_dict(), "optimizer": optimizer.state_dict(), "rng": rng_state(device),
        })
        ctx.emit(Epoch(ctx.job_id, run.run_id, EpochRecord.from_dict(record)))
        tensorboard.log_epoch(run, record, ctx)
    chosen = _chosen(records)
    run.set_status("finished", _finished_message(chosen), best_accuracy=chosen["test_acc"])
    distributed.barrier()  # the checkpoints exist before any rank reads them (e.g. the new teacher)
    return FitResult(plan.name, run.run_id, chosen["test_acc"], records[-1]["test_acc"], recipe.epochs, records,
                     chosen["epoch"], chosen.get("val_acc"))


def _validation_loader(plan: FitPlan, batch_size: int, channels_last: bool) -> DeviceLoader | None:
    """The validation split, sharded over ranks like the test split (``evaluate`` sums the shares)."""
    if plan.val_set is None:
        return None
    here = distributed.current()
    return DeviceLoader(plan.val_set, batch_size, plan.device, train=False, channels_last=channels_last,
                        rank=here.rank, world_size=here.world_size)


def _select_on(record: dict[str, Any], student: torch.nn.Module, val_loader: DeviceLoader | None,
               mixed: Callable[[], Any], ctx: JobContext) -> float:
    """The number that chooses the best epoch: validation accuracy (added to the record), or test
    accuracy without a validation split."""
    if val_loader is None:
        return float(record["test_acc"])
    record["val_acc"] = evaluate(student, val_loader, mixed, ctx, phase="validating")
    return float(record["val_acc"])


def _chosen(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The first epoch with the best selection score (what the best checkpoint holds, resumed or not)."""
    key = "val_acc" if "val_acc" in records[-1] else "test_acc"
    return max(records, key=lambda r: (r[key], -r["epoch"]))


def _finished_message(chosen: dict[str, Any]) -> str:
    if "val_acc" in chosen:
        return (f"test accuracy {chosen['test_acc']:.2%} at epoch {chosen['epoch']}, the best on validation "
                f"({chosen['val_acc']:.2%})")
    return f"best test accuracy {chosen['test_acc']:.2%} (epoch {chosen['epoch']}; no validation split)"


def train_epoch(plan: FitPlan, step, optimizer, loader: DeviceLoader, epoch: int, mixed, ctx: JobContext,
                 run: RunDir) -> tuple[dict[str, float], float]:
    """One pass over the training set; loss sums stay on the device (no per-batch sync on GPU)."""
    plan.distiller.train()
    sums: dict[str, Tensor] = {}
    correct = torch.zeros((), dtype=torch.long, device=plan.device)
    # the first non-finite batch is recorded on the device; reading it back syncs, so on a GPU
    # that happens every 16 batches (the run stops a few batches late, naming the right one)
    check_every = 1 if plan.device.type == "cpu" else 16
    first_bad = torch.full((), -1, dtype=torch.long, device=plan.device)
    total = len(loader)
    for batch, (images, labels, indices) in enumerate(loader, start=1):
        if loader.world_size == 1:
            ctx.check_cancelled()  # across ranks the flag is agreed below instead
        if plan.augment is not None:
            images = plan.augment(images, indices, epoch)
        with mixed():
            logits, terms = step(images, labels, indices, epoch)
        weight = loader.weight(batch - 1)  # 1 in one process: this rank's part of the global-batch mean
        loss = sum(terms.values()) * weight
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), batch, first_bad)
        if batch % check_every == 0 or batch == total:
            bad = _agreed_stop(first_bad, ctx, loader.world_size > 1)
            if bad >= 0:
                _stop_on_nonfinite(plan, run, terms, epoch, bad, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for key, value in terms.items():
                sums[key] = sums.get(key, 0) + value.detach().float() * weight
            correct += (logits.argmax(1) == labels).sum()
        ctx.progress(plan.name, batch, total, f"epoch {epoch}/{plan.recipe.epochs}")
    if loader.world_size > 1:  # means over ranks of the weighted shares are the global-batch means
        keys = sorted(sums)
        totals = distributed.all_reduce(torch.stack([sums[k] for k in keys] + [correct.float()]))
        sums = {k: totals[i] / loader.world_size for i, k in enumerate(keys)}
        correct = totals[-1].round().long()
    losses = {key: value.item() / total for key, value in sums.items()}
    return losses, correct.item() / len(loader.labels)


def _agreed_stop(first_bad: Tensor, ctx: JobContext, across_ranks: bool) -> int:
    """The first non-finite batch (-1: none); across ranks, the earliest on any rank, and a cancel
    on any rank cancels all (one all-reduce carries both)."""
    if not across_ranks:
        return int(first_bad.item())
    never = torch.iinfo(torch.long).max
    flags = torch.stack([torch.where(first_bad >= 0, first_bad, never),
                         torch.tensor(0 if ctx.cancelled else 1, device=first_bad.device)])
    bad, carry_on = distributed.all_reduce(flags, "min").tolist()
    if not carry_on:
        raise JobCancelled()
    return -1 if bad == never else int(bad)


def ddp_module(distiller: torch.nn.Module, device: torch.device, sync_bn: bool) -> torch.nn.Module:
    """The student and the method's extras as one DDP module; the teacher and CRD's bank stay out.

    The teacher is frozen and identical on every rank, so DDP neither broadcasts nor reduces
    it; CRD's bank is kept identical by its own all-gather. Buffers (BN statistics) are not
    broadcast every step: ``sync_buffers`` aligns them once per epoch.
    """
    from torch.nn.parallel import DistributedDataParallel

    if sync_bn:
        if device.type != "cuda":
            raise KdcamError("--sync-bn needs CUDA: PyTorch's SyncBatchNorm has no CPU kernel (on CPU each rank "
                             "normalises with its own share's statistics)")
        for name, child in list(distiller.named_children()):
            if name != "teacher":
                setattr(distiller, name, torch.nn.SyncBatchNorm.convert_sync_batchnorm(child))
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(distiller, _unsynced(distiller))
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    # newer torch names broadcast_buffers forward_sync_buffers; either way: no per-step broadcast
    newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    no_sync: dict[str, Any] = {"forward_sync_buffers" if newer else "broadcast_buffers": False}
    return DistributedDataParallel(distiller, device_ids=ids, **no_sync)


def _unsynced(distiller: torch.nn.Module) -> list[str]:
    names = [n for n, _ in distiller.named_parameters()] + [n for n, _ in distiller.named_buffers()]
    return [n for n in names if n.startswith(("teacher.", "memory."))]


def sync_buffers(distiller: torch.nn.Module) -> None:
    """Rank 0's buffers (BN running statistics of the student and extras) on every rank."""
    here = distributed.current()
    if not here.distributed:
        return
    skip = set(_unsynced(distiller))
    for name, buffer in distiller.named_buffers():
        if name not in skip:
            torch.distributed.broadcast(buffer, src=0)


def _stop_on_nonfinite(plan: FitPlan, run: RunDir, terms: dict[str, Tensor], epoch: int, bad: int, now: int) -> None:
    values = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
    message = (f"{plan.name}: loss is not finite at epoch {epoch}, batch {bad} (terms at batch {now}: {values}); "
               "training stopped. The checkpoints of the last good epoch are kept; lower the learning rate or "
               "the loss weights.")
    run.set_status("failed", message)
    raise KdcamError(message)


def evaluate(model: torch.nn.Module, loader: DeviceLoader, mixed, ctx: JobContext | None = None,
             phase: str = "evaluating", transform: Callable[[Tensor, Tensor], Tensor] | None = None) -> float:
    """Top-1 accuracy on ``loader`` (eval mode, inference mode); the model's mode is restored."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=loader.labels.device)
    total = len(loader)
    with torch.inference_mode():
        for batch, (images, labels, indices) in enumerate(loader, start=1):
            if ctx is not None:
                if loader.world_size == 1:
                    ctx.check_cancelled()  # across ranks: agreed at the next training batch
                ctx.progress(phase, batch, total)
            if transform is not None:  # transform(images, indices), e.g. a fixed colour jitter
                images = transform(images, indices)
            with mixed():
                correct += (model(images).argmax(1) == labels).sum()
    model.train(was_training)
    if loader.world_size > 1:  # each rank counted its shares
        distributed.all_reduce(correct)
    return correct.item() / len(loader.labels)


def _save_checkpoint(store: CheckpointStore, name: str, plan: FitPlan, run: RunDir, record: dict[str, Any],
                     epoch: int) -> None:
    data = plan.train_set
    meta = CheckpointMeta(
        name=name, arch=plan.arch, num_classes=data.num_classes, width=plan.width, in_channels=data.channels,
        input_size=data.image_size, mean=tuple(data.mean), std=tuple(data.std), dataset=data.name,
        class_names=list(data.class_names), role=plan.role, method=plan.method, teacher=plan.teacher_name,
        accuracy=record["test_acc"], recipe=plan.recipe.name, epochs=epoch, run_id=run.run_id,
        val_accuracy=record.get("val_acc"), validation=plan.validation, method_options=plan.method_options or None,
    )
    if plan.template is not None:  # the same model code, arguments and architecture label
        meta = dataclasses.replace(meta, arch=plan.template.arch, width=plan.template.width,
                                   model_def=plan.template.model_def, model_def_sha256=plan.template.model_def_sha256,
                                   model_args=plan.template.model_args)
    store.save(name, plan.distiller.student, meta, owner=run.run_id)
