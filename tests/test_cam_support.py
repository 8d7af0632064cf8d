"""Small, deterministic models and images shared by the CAM tests (helpers only, no tests)."""

from __future__ import annotations

import torch

from engine.models import build_model


def trained_model(arch: str, width: float, seed: int = 0, steps: int = 3, num_classes: int = 10):
    """A tiny model nudged by a few SGD steps so its maps are far from flat, then put in eval mode."""
    torch.manual_seed(seed)
    model = build_model(arch, num_classes, width=width)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    images, labels = batch(16, seed=seed + 100, num_classes=num_classes)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimiser.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


def batch(n: int = 4, seed: int = 1, num_classes: int = 10, size: int = 32):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, size, size, generator=generator)
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    return images, labels


def reference_raw(cam_class, model, tap: str, images: torch.Tensor, targets) -> torch.Tensor:
    """pytorch-grad-cam's raw map for one layer (its ``get_cam_image``), captured before its own
    scaling and cv2 resizing; ``targets`` are its per-image callables (None: its argmax)."""
    captured = []
    with cam_class(model=model, target_layers=[model.tap_module(tap)]) as cam:
        original = cam.get_cam_image

        def capture(*args, **kwargs):
            captured.append(original(*args, **kwargs))
            return captured[-1]

        cam.get_cam_image = capture
        cam(input_tensor=images, targets=targets, aug_smooth=False, eigen_smooth=False)
    model.zero_grad(set_to_none=True)  # the reference backpropagates into the weights
    return torch.from_numpy(captured[0])
