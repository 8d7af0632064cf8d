"""Why attention transfer collapses on short runs: its gradient against CE's, per tap and per
student width, and what its first SGD steps do to the BatchNorm-followed conv weights.

Needs a trained teacher checkpoint on ``shapes`` (e.g. the demo's: ``kdcam train --methods si
--recipe demo`` trains ``vgg16-shapes-demo-s0``). Fresh VGG-11 students, seeded; the same
batches for every variant.

    .venv/bin/python bench/at_short_runs.py --workspace WS --teacher vgg16-shapes-demo-s0 [--steps 60]

The 8-epoch accuracies in BENCHMARKS.md come from ``kdcam train --teacher vgg16-shapes-demo-s0
--recipe demo --methods at`` with ``--option at.at_weight=190`` / ``at.warmup_epochs=8`` / none,
each in its own workspace (method options are not part of checkpoint names).
"""

from __future__ import annotations

import argparse

import torch

from engine.api.workspace import Workspace
from engine.checkpoints.store import CheckpointStore
from engine.data import load_split
from engine.data.loader import DeviceLoader
from engine.distill import TrainingSet, build_distiller
from engine.distill.attention import attention_map
from engine.models import build_model

VARIANTS: tuple[tuple[str, str, dict[str, object]], ...] = (
    ("si", "si", {}),
    ("at", "at", {}),
    ("at x190", "at", {"at_weight": 190.0}),
    ("at warm-up 8", "at", {"warmup_epochs": 8}),
    ("at stage2,3", "at", {"taps": "stage2,stage3"}),
)


def grad_norm(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return float(torch.sqrt(sum((g**2).sum() for g in grads if g is not None)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--teacher", default="vgg16-shapes-demo-s0")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    ws = Workspace.open(args.workspace)
    teacher, _ = CheckpointStore(ws.checkpoints).load(args.teacher, device="cpu")
    teacher.eval()
    data = load_split("shapes", "train", ws.data)
    training_set = TrainingSet(len(data), torch.from_numpy(data.labels))
    loader = DeviceLoader(data, 64, torch.device("cpu"), train=True, seed=0)
    loader.set_epoch(1)
    batches = [batch for _, batch in zip(range(args.steps), loader, strict=False)]

    print("(1) per tap, VGG-11 x1/16 at initialisation (first batch)")
    torch.manual_seed(0)
    student = build_model("vgg11", data.num_classes, 0.0625)
    at = build_distiller("at", student, teacher, {}, training_set).train()
    params = list(student.parameters())
    x, y, _ = batches[0]
    logits, taps = student.forward_taps(x)
    _, teacher_taps = at.teacher_outputs(x)
    print(f"  CE {torch.nn.functional.cross_entropy(logits, y).item():.3f}  "
          f"|grad CE| {grad_norm(torch.nn.functional.cross_entropy(logits, y), params):.3f}")
    for tap in at.taps:
        a_s, a_t = attention_map(taps[tap]), attention_map(teacher_taps[tap])
        term = 1000 * (a_s - a_t).pow(2).mean()
        print(f"  {tap} {tuple(taps[tap].shape[1:])}: 1000·mean((a_s-a_t)²) {term.item():7.3f}  "
              f"|grad| {grad_norm(term, params):7.3f}  cos(a_s, a_t) {(a_s * a_t).sum(1).mean().item():.3f}")

    print("(2) |grad 1000·AT| / |grad CE| at initialisation against the student's width (2 seeds x 3 batches)")
    for width in (0.0625, 0.125, 0.25, 0.5, 1.0):
        ratios = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            student = build_model("vgg11", data.num_classes, width)
            at = build_distiller("at", student, teacher, {}, training_set).train()
            params = list(student.parameters())
            for x, y, i in batches[:3]:
                _, terms = at(x, y, i, 1)
                ratios.append(grad_norm(terms["at"], params) / grad_norm(terms["ce"], params))
        print(f"  width {width:<7g} {sum(ratios) / len(ratios):7.1f} (min {min(ratios):.1f}, max {max(ratios):.1f})")

    print(f"(3) after {len(batches)} SGD steps (lr 0.05, momentum 0.9, wd 5e-4), VGG-11 x1/16, epoch 1")
    for label, method, options in VARIANTS:
        torch.manual_seed(0)
        student = build_model("vgg11", data.num_classes, 0.0625)
        start = {n: p.detach().norm().item() for n, p in student.named_parameters() if p.dim() == 4}
        distiller = build_distiller(method, student, teacher if method != "si" else None, dict(options),
                                    training_set).train()
        optimizer = torch.optim.SGD(list(distiller.trainable_parameters()), lr=0.05, momentum=0.9, weight_decay=5e-4)
        ces = []
        for x, y, i in batches:
            logits, terms = distiller(x, y, i, 1)
            optimizer.zero_grad()
            sum(terms.values()).backward()
            optimizer.step()
            ces.append(torch.nn.functional.cross_entropy(logits.detach(), y).item())
        growth = {n.split(".")[0]: student.get_parameter(n).norm().item() / start[n] for n in start}
        print(f"  {label:13s} CE of the last 10 batches {sum(ces[-10:]) / 10:.3f}   conv weight norm x: "
              + " ".join(f"{stage} {g:.2f}" for stage, g in growth.items()))


if __name__ == "__main__":
    main()
