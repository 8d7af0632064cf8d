"""Run by tests/test_distributed.py, in one process or under torchrun: one optimiser step per method.

``python tests/dist_harness.py WORKSPACE OUT`` trains, for each case below, a student for one
epoch of exactly one global batch (the whole training split) through the real trainer
(``Session.fit``: loader shards, DDP, loss weighting, CRD's gathers), then writes every
rank's student and extras to ``OUT/CASE-rankR.pt``. The ``bank`` case takes four steps and
writes CRD's memory bank. BN layers are held in eval mode: see the test's docstring for why.
Last, a run whose images turn to NaN on the last rank only (at the second batch) writes each
rank's error message to ``OUT/nan-rankR.txt``: every rank must stop at that batch.
"""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine import distributed
from engine.api.specs import TrainSpec
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.train.suite import open_session

DATASET = "shapes?classes=4&train=63&test=16"  # 63 images: the two ranks' shares differ (32 and 31)
CASES: dict[str, tuple[str, dict[str, Any], int]] = {  # case -> (method, options, batch size)
    "si": ("si", {}, 63), "kd": ("kd", {}, 63), "dkd": ("dkd", {}, 63), "hints": ("hints", {}, 63),
    "crd": ("crd", {"num_negatives": 32}, 63), "crd-infonce": ("crd", {"mode": "infonce"}, 63),
    "bank": ("crd", {"num_negatives": 32}, 16),
    "kd-std": ("kd", {"standardize": True}, 63), "cat": ("cat", {}, 63), "xa": ("xa", {}, 63),
}


def _eval_mode_bn(module: nn.Module) -> None:
    """Keep every BN layer in eval mode whatever ``train()`` asks (running statistics, no batch statistics)."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.train = types.MethodType(lambda self, mode=True: nn.Module.train(self, False), layer)  # type: ignore[method-assign]
            layer.eval()


def main(workspace: str, out: str) -> None:
    torch.use_deterministic_algorithms(True)
    here = distributed.join("cpu")
    ctx = JobContext("harness", lambda event: None, threading.Event())
    for case, (method, options, batch_size) in CASES.items():
        spec = TrainSpec(workspace=workspace, dataset=DATASET, teacher="vgg8", student="vgg8", methods=(method,),
                         recipe="demo", epochs=1, batch_size=batch_size, width=0.125, teacher_width=0.125,
                         device="cpu", method_options={method: options})
        session = open_session(spec, ctx)
        teacher = session.build("vgg8", 0.25).eval()
        distiller = session.distiller(method, session.build("vgg8"), teacher)
        _eval_mode_bn(distiller)
        session.fit(f"h-{case}", "student", method, "vgg8", distiller, ctx, teacher_name="random-teacher")
        state = {"student": distiller.student.state_dict(), "extras": distiller.extras_state_dict()}
        torch.save(state, Path(out) / f"{case}-rank{here.rank}.pt")
    _nan_on_last_rank(workspace, out, ctx, here)
    distributed.leave()


def _nan_on_last_rank(workspace: str, out: str, ctx: JobContext, here: distributed.Rank) -> None:
    spec = TrainSpec(workspace=workspace, dataset=DATASET, teacher="vgg8", student="vgg8", methods=("si",),
                     recipe="demo", epochs=1, batch_size=16, width=0.125, device="cpu")
    session = open_session(spec, ctx)
    calls = [0]

    def poison(images: torch.Tensor, indices: torch.Tensor, epoch: int) -> torch.Tensor:
        calls[0] += 1
        return images * float("nan") if here.rank == here.world_size - 1 and calls[0] == 2 else images

    distiller = session.distiller("si", session.build("vgg8"), None)
    try:
        session.fit("h-nan", "student", "si", "vgg8", distiller, ctx, augment=poison)
    except KdcamError as exc:
        (Path(out) / f"nan-rank{here.rank}.txt").write_text(str(exc))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
