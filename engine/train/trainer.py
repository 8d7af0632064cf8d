"""Training one model: SGD over a Distiller, evaluation every epoch, checkpoints and resume state.

The loop is the same for teachers (``si``: plain CE) and students (any method). At the end
of every epoch it writes, in this order: the ``-last`` checkpoint, the best checkpoint when
test accuracy improved, events.jsonl, then state.pt. A kill therefore loses at most the
epoch in progress, and ``resume`` replays exactly what an uninterrupted run would have done
(the loader's order and augmentation depend on (seed, epoch) only; RNG state is restored).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from engine.api.runs import EpochRecord
from engine.api.checkpoints import CheckpointMeta
from engine.checkpoints.store import CheckpointStore
from engine.data import ImageSet
from engine.data.loader import DeviceLoader
from engine.distill import Distiller
from engine.errors import KdcamError
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


@dataclass
class FitResult:
    name: str
    run_id: str
    best_accuracy: float
    last_accuracy: float
    epochs: int
    records: list[dict[str, Any]] = field(default_factory=list)


def fit(plan: FitPlan, run: RunDir, store: CheckpointStore, ctx: JobContext, resume: bool = False) -> FitResult:
    """Train ``plan.distiller`` for the recipe's epochs (or the rest of them when resuming)."""
    recipe, device = plan.recipe, plan.device
    distiller = prepare_model(plan.distiller, device)  # student and extras: device, channels_last on CUDA
    channels_last = device.type == "cuda"
    train_loader = DeviceLoader(plan.train_set, recipe.batch_size, device, train=True, seed=plan.seed,
                                channels_last=channels_last)
    test_loader = DeviceLoader(plan.test_set, max(recipe.batch_size, 256), device, train=False,
                               channels_last=channels_last)
    params = list(distiller.trainable_parameters())
    optimizer = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    step = torch.compile(distiller) if plan.compile else distiller
    mixed = autocast(device)

    start, best, records = 0, -1.0, []
    if resume:
        state = run.load_state()
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
        test_acc = evaluate(distiller.student, test_loader, mixed, ctx)
        record = {
            "epoch": epoch, "epochs": recipe.epochs, "losses": losses, "train_acc": train_acc,
            "test_acc": test_acc, "lr": lr, "images_per_s": len(plan.train_set) / seconds,
            "elapsed": time.perf_counter() - began,
        }
        records.append(record)
        _save_checkpoint(store, f"{plan.name}-last", plan, run, test_acc, epoch)
        if test_acc > best:
            best = test_acc
            _save_checkpoint(store, plan.name, plan, run, test_acc, epoch)
        run.write_events(records)
        run.save_state({
            "epoch": epoch, "best": best, "student": distiller.student.state_dict(),
            "extras": distiller.extras_state_dict(), "optimizer": optimizer.state_dict(), "rng": rng_state(device),
        })
        ctx.emit(Epoch(ctx.job_id, run.run_id, EpochRecord.from_dict(record)))
        tensorboard.log_epoch(run, record, ctx)
    run.set_status("finished", f"best test accuracy {best:.2%}", best_accuracy=best)
    return FitResult(plan.name, run.run_id, best, records[-1]["test_acc"], recipe.epochs, records)


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
        ctx.check_cancelled()
        if plan.augment is not None:
            images = plan.augment(images, indices, epoch)
        with mixed():
            logits, terms = step(images, labels, indices, epoch)
        loss = sum(terms.values())
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), batch, first_bad)
        if (batch % check_every == 0 or batch == total) and first_bad.item() >= 0:
            _stop_on_nonfinite(plan, run, terms, epoch, int(first_bad.item()), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for key, value in terms.items():
                sums[key] = sums.get(key, 0) + value.detach().float()
            correct += (logits.argmax(1) == labels).sum()
        ctx.progress(plan.name, batch, total, f"epoch {epoch}/{plan.recipe.epochs}")
    losses = {key: value.item() / total for key, value in sums.items()}
    return losses, correct.item() / len(loader.labels)


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
                ctx.check_cancelled()
                ctx.progress(phase, batch, total)
            if transform is not None:  # transform(images, indices), e.g. a fixed colour jitter
                images = transform(images, indices)
            with mixed():
                correct += (model(images).argmax(1) == labels).sum()
    model.train(was_training)
    return correct.item() / len(loader.labels)


def _save_checkpoint(store: CheckpointStore, name: str, plan: FitPlan, run: RunDir, accuracy: float, epoch: int) -> None:
    data = plan.train_set
    meta = CheckpointMeta(
        name=name, arch=plan.arch, num_classes=data.num_classes, width=plan.width, in_channels=data.channels,
        input_size=data.image_size, mean=tuple(data.mean), std=tuple(data.std), dataset=data.name,
        class_names=list(data.class_names), role=plan.role, method=plan.method, teacher=plan.teacher_name,
        accuracy=accuracy, recipe=plan.recipe.name, epochs=epoch, run_id=run.run_id,
    )
    if plan.template is not None:  # the same model code, arguments and architecture label
        meta = dataclasses.replace(meta, arch=plan.template.arch, width=plan.template.width,
                                   model_def=plan.template.model_def, model_def_sha256=plan.template.model_def_sha256,
                                   model_args=plan.template.model_args)
    store.save(name, plan.distiller.student, meta)
