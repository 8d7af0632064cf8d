"""CAM cost of a user model (any ``nn.Module``, tapped through forward hooks) against the zoo path.

For each network, the same weights run three ways, timed interleaved (medians):
- forward: the plain module under ``no_grad`` (the unit of every ratio);
- zoo path: ``compute_cams`` on the zoo / torchvision wrapper (body to the tap without
  autograd, then tap -> logits differentiated);
- hook path: ``compute_cams`` on ``UserModel(module)``, how a ``--model-def`` model runs
  (autograd off until the tap's forward hook, a leaf there, autograd on after it);
- pytorch-grad-cam: its ``GradCAM`` on the plain module (hooks, full graph), after checking
  that its maps equal ours (<= 1e-4 after the common post-processing).

Networks: resnet20 and vgg16 at 32 px (batch 64) and torchvision's resnet18 at 224 px (batch 8).
Usage: python bench/user_models.py [--device cpu|cuda] [--repeats 5] [--threads T]
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cam import interleaved_medians, load_average  # noqa: E402
from engine.cam import compute_cams, postprocess  # noqa: E402
from engine.checkpoints.user_model import UserModel  # noqa: E402
from engine.models import build_model  # noqa: E402

CASES = (("resnet20", 32, 64, "layer3"), ("vgg16", 32, 64, "stage5"), ("tv:resnet18", 224, 8, "layer4"))


def run_case(arch: str, size: int, batch: int, tap: str, device: torch.device, repeats: int) -> None:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    zoo = build_model(arch, 100).to(device).eval()
    user = UserModel(zoo, 3, size).to(device).eval()  # the very same module, seen as a plain nn.Module
    images = torch.randn(batch, 3, size, size, device=device)
    with torch.no_grad():  # the predicted class: its evidence is positive, so the maps are informative
        labels = zoo(images).argmax(dim=1)
    targets = [ClassifierOutputTarget(int(c)) for c in labels]
    reference = GradCAM(model=zoo, target_layers=[zoo.tap_module(tap)])

    ours = compute_cams(zoo, images, labels, tap=tap).maps
    hooked = compute_cams(user, images, labels, tap=tap).maps
    theirs, _ = postprocess(torch.from_numpy(reference(input_tensor=images, targets=targets)).to(device),
                            (size, size))
    agreement = (hooked - ours).abs().max().item()
    disagreement = (theirs.float() - ours).abs().max().item()
    if max(agreement, disagreement) > 1e-4:
        raise SystemExit(f"{arch}: maps disagree (hook vs zoo {agreement:.1e}, pytorch-grad-cam {disagreement:.1e})")

    def forward() -> None:
        with torch.no_grad():
            zoo(images)

    times = interleaved_medians({
        "forward": forward,
        "zoo path": lambda: compute_cams(zoo, images, labels, tap=tap),
        "hook path": lambda: compute_cams(user, images, labels, tap=tap),
        "pytorch-grad-cam": lambda: reference(input_tensor=images, targets=targets),
    }, repeats, device)
    reference.__exit__(None, None, None)
    unit = times["forward"]
    print(f"  {arch} {size}px batch {batch} tap {tap}: forward {unit * 1e3:.1f} ms; "
          f"hook vs zoo maps differ by {agreement:.1e}")
    for name in ("zoo path", "hook path", "pytorch-grad-cam"):
        print(f"    {name:17s} {times[name] * 1e3:8.1f} ms  = {times[name] / unit:5.2f} x forward")
    print(f"    hook path / zoo path {times['hook path'] / times['zoo path']:.2f}; "
          f"pytorch-grad-cam / hook path {times['pytorch-grad-cam'] / times['hook path']:.2f}; "
          f"pytorch-grad-cam maps vs ours {disagreement:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"Grad-CAM: user model (hook path) vs zoo path vs pytorch-grad-cam on {name}, "
          f"{torch.get_num_threads()} threads; {load_average()}")
    for case in CASES:
        run_case(*case, device=device, repeats=args.repeats)


if __name__ == "__main__":
    main()
