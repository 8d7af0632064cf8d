"""CAM benchmarks, every number a ratio measured side by side in this one run (DESIGN §10).

(a) CAM time ÷ forward-only time, same model and images, per method (goal ≤ 1.3 for
    Grad-CAM: one forward plus a backward that stops at the tap).
(b) our Grad-CAM ÷ pytorch-grad-cam's GradCAM on VGG-16, batch 64, 32x32 inputs, after
    checking that the maps agree (≤ 1e-4 after the common post-processing).
(c) peak resident memory of a full analysis (teacher + one student) at N = 1,000 and
    N = 10,000, each in a fresh process: it must not grow with N beyond the stored maps.

Timings interleave the contenders and report medians, because shared machines are noisy;
every contender runs in this process with the same ``torch`` thread count (``--threads``),
and the load average is printed beside each part.
Usage: python bench/cam.py [--device cpu|cuda] [--repeats 5] [--parts abc] [--threads T]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.cam import METHODS, compute_cams, postprocess  # noqa: E402
from engine.models import build_model  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved_medians(contenders: dict[str, Callable[[], object]], repeats: int,
                        device: torch.device) -> dict[str, float]:
    """Median seconds of each contender, run in turn ``repeats`` times after one warm-up each."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()
    for _ in range(repeats):
        for name, fn in contenders.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def fixture(arch: str, batch: int, device: torch.device, num_classes: int = 100):
    torch.manual_seed(0)
    model = build_model(arch, num_classes).to(device).eval()
    images = torch.randn(batch, 3, 32, 32, device=device)
    labels = torch.randint(0, num_classes, (batch,), device=device)
    return model, images, labels


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_overhead(device: torch.device, batch: int, repeats: int, methods: list[str]) -> None:
    print(f"(a) CAM time / forward-only time, batch {batch}, 32x32 (goal <= 1.3); {load_average()}")
    print("    forward: model(images) under no_grad, the model as given; CAM: compute_cams (fast path to the tap)")
    for arch in ("vgg16", "resnet20", "attention_cnn"):
        model, images, labels = fixture(arch, batch, device)
        usable = [m for m in methods if m != "attention" or hasattr(model, "attention_tap")]

        def forward(model: torch.nn.Module = model, images: torch.Tensor = images) -> None:
            with torch.no_grad():
                model(images)

        contenders = {"forward": forward}
        contenders |= {m: (lambda m=m, model=model, images=images, labels=labels:
                           compute_cams(model, images, labels, method=m)) for m in usable}
        medians = interleaved_medians(contenders, repeats, device)
        base = medians.pop("forward")
        cells = "  ".join(f"{m} {t / base:.2f}" for m, t in medians.items())
        print(f"    {arch:<14} forward {base * 1e3:7.1f} ms | {cells}")
    print(f"    ({load_average()})")
    if "scorecam" not in methods:
        print("    (scorecam not timed: it scores one masked copy per channel by design; --methods scorecam)")


def bench_reference(device: torch.device, repeats: int) -> None:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, images, labels = fixture("vgg16", 64, device)
    targets = [ClassifierOutputTarget(int(c)) for c in labels]
    raw_reference: list = []

    def reference() -> None:
        with GradCAM(model=model, target_layers=[model.tap_module("stage5")]) as cam:
            original = cam.get_cam_image

            def capture(*args, **kwargs):
                raw_reference[:] = [original(*args, **kwargs)]
                return raw_reference[0]

            cam.get_cam_image = capture
            cam(input_tensor=images, targets=targets)
        model.zero_grad(set_to_none=True)

    ours = compute_cams(model, images, labels)
    reference()
    expected, _ = postprocess(torch.from_numpy(raw_reference[0]).to(device), (32, 32))
    diff = (ours.maps - expected).abs().max().item()
    medians = interleaved_medians({"ours": lambda: compute_cams(model, images, labels), "reference": reference},
                                  repeats, device)
    speedup = medians["reference"] / medians["ours"]
    print(f"(b) Grad-CAM on VGG-16, batch 64, 32x32: maps agree to {diff:.1e} ({'OK' if diff <= 1e-4 else 'MISMATCH'});"
          f" {load_average()}")
    print("    ours: compute_cams; body to the tap without autograd, channels-last, conv+BN folded; tap -> logits"
          " differentiated to the tap only")
    print("    pytorch-grad-cam 1.5.7: GradCAM on the model as given (NCHW, BN separate; hooks; full backward),"
          " zero_grad after")
    print(f"    ours {medians['ours'] * 1e3:.1f} ms, pytorch-grad-cam {medians['reference'] * 1e3:.1f} ms: "
          f"ours / reference = {medians['ours'] / medians['reference']:.3f} ({speedup:.1f}x faster; goal >= 3x)")
    print(f"    ({load_average()})")


MEMORY_CLASSES = 20
#: held in memory by design: the generated ``shapes`` split (RGB uint8 image + bool mask per pixel)
DATASET_BYTES_PER_PIXEL = 3 + 1
#: written to the analysis files (streamed, not held): image, mask, one uint8 map per model (2 models)
FILE_BYTES_PER_PIXEL = 3 + 1 + 2

def prepare_workspace(root: Path) -> None:
    """A workspace with a teacher (vgg8) and one student (vgg8, quarter width), untrained:
    memory does not depend on what the weights learned."""
    from engine.api.checkpoints import CheckpointMeta
    from engine.checkpoints.store import CheckpointStore

    store = CheckpointStore(root / "checkpoints")
    for name, width, role in (("teacher", 0.5, "teacher"), ("student", 0.25, "student")):
        torch.manual_seed(0)
        store.save(name, build_model("vgg8", MEMORY_CLASSES, width=width),
                   CheckpointMeta(name=name, arch="vgg8", num_classes=MEMORY_CLASSES, width=width, role=role))


def _resident_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(workspace: str, n: int, device: str) -> None:
    """Run one full analysis; print how far it raised this process's resident memory (MiB).

    The kernel's peak counter is reset first (``clear_refs`` 5), so the peak is the
    analysis's own, not the transient peak of importing torch; it is also reset at every
    progress event, so the phase holding the peak is named.
    """
    import json
    import threading

    from engine.analysis.job import run_analysis_job
    from engine.api.specs import AnalyzeSpec
    from engine.jobs import JobContext

    spec = AnalyzeSpec(workspace=workspace, teacher="teacher", students=("student",), name=f"n{n}",
                       dataset=f"shapes?classes={MEMORY_CLASSES}&train=100&test={n}", device=device,
                       resamples=1000)
    phase_peaks: dict[str, float] = {}
    phase = ["loading"]

    def on_event(event: object) -> None:
        """Peak of the phase that just ran, then the counter restarts for the next one."""
        phase_peaks[phase[0]] = max(phase_peaks.get(phase[0], 0.0), _resident_mib("VmHWM") - before)
        phase[0] = getattr(event, "phase", phase[0])
        Path("/proc/self/clear_refs").write_text("5")

    Path("/proc/self/clear_refs").write_text("5")
    before = _resident_mib("VmRSS")
    started = time.perf_counter()
    run_analysis_job(spec, JobContext("bench", on_event, threading.Event()))
    on_event(None)
    peak_phase = max(phase_peaks, key=phase_peaks.__getitem__)
    row = {"peak_growth_mib": phase_peaks[peak_phase], "peak_phase": peak_phase,
           "seconds": time.perf_counter() - started}
    if device == "cuda":
        row["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(row))


def bench_memory(device: torch.device) -> None:
    import json
    import tempfile

    print("(c) peak resident memory above the start of a full analysis (teacher vgg8 + one student, 32x32 shapes)")
    with tempfile.TemporaryDirectory() as tmp:
        prepare_workspace(Path(tmp))
        rows = {}
        for n in (1_000, 10_000):
            out = subprocess.run([sys.executable, __file__, "--memory-child", tmp, str(n), "--device", str(device)],
                                 capture_output=True, text=True, check=True)
            rows[n] = json.loads(out.stdout.strip().splitlines()[-1])
            held = n * 32 * 32 * DATASET_BYTES_PER_PIXEL / 2**20
            files = n * 32 * 32 * FILE_BYTES_PER_PIXEL / 2**20
            cuda = f", GPU peak {rows[n]['cuda_peak_mib']:.0f} MiB" if "cuda_peak_mib" in rows[n] else ""
            print(f"    N = {n:>6,}: peak RSS +{rows[n]['peak_growth_mib']:.0f} MiB (in phase "
                  f"'{rows[n]['peak_phase']}'){cuda} in {rows[n]['seconds']:.0f} s; generated dataset held in "
                  f"memory {held:.0f} MiB; images, masks, maps streamed to files {files:.0f} MiB")
        growth = rows[10_000]["peak_growth_mib"] - rows[1_000]["peak_growth_mib"]
        held_growth = 9_000 * 32 * 32 * DATASET_BYTES_PER_PIXEL / 2**20
        print(f"    growth 1k -> 10k: {growth:.0f} MiB, of which the dataset held in memory: {held_growth:.0f} MiB")

def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        device = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cpu"
        memory_child(sys.argv[2], int(sys.argv[3]), device)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--methods", default=",".join(m for m in METHODS if m != "scorecam"),
                        help="methods for (a); scorecam costs about one forward per channel by design")
    parser.add_argument("--parts", default="abc", help="which measurements to run, e.g. 'ab' or 'c'")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for every contender (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    if "a" in args.parts:
        bench_overhead(device, args.batch, args.repeats, args.methods.split(","))
    if "b" in args.parts:
        bench_reference(device, args.repeats)
    if "c" in args.parts:
        bench_memory(device)


if __name__ == "__main__":
    main()
