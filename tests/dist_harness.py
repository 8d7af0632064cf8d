"""Run by tests/test_distributed.py, in one process or under torchrun: one optimiser step per method.

``python tests/dist_harness.py WORKSPACE OUT`` trains, for each case below, a student for one
epoch of exactly one global batch (the whole training split) through the real trainer
(``Session.fit``: loader shards, DDP, loss weighting, CRD's gathers), then writes every
rank's student and extras to ``OUT/CASE-rankR.pt``. The ``bank`` case takes four steps and
writes CRD's memory bank. BN layers are held in eval mode: see the test's docstring for why.
"""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path

import torch
from torch import nn

from engine import distributed
from engine.jobs import JobContext
from engine.specs import TrainSpec
from engine.train.suite import open_session

DATASET = "shapes?classes=4&train=63&test=16"  # 63 images: the two ranks' shares differ (32 and 31)
CASES = {  # case -> (method, options, batch size)
    "si": ("si", {}, 63), "kd": ("kd", {}, 63), "dkd": ("dkd", {}, 63), "hints": ("hints", {}, 63),
    "crd": ("crd", {"num_negatives": 32}, 63), "crd-infonce": ("crd", {"mode": "infonce"}, 63),
    "bank": ("crd", {"num_negatives": 32}, 16),
}


def _eval_mode_bn(module: nn.Module) -> None:
    """Keep every BN layer in eval mode whatever ``train()`` asks (running statistics, no batch statistics)."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.train = types.MethodType(lambda self, mode=True: nn.Module.train(self, False), layer)
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
    distributed.leave()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
