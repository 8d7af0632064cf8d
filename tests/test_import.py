"""Importing foreign checkpoints: every file shape users have round-trips to identical
logits, architectures are recognised across the registry, and bad files are refused
with one clear message while the store stays exactly as it was."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine.api.specs import ImportSpec
from engine.api.workspace import Workspace
from engine.checkpoints import CheckpointStore
from engine.checkpoints.importer import import_checkpoint
from engine.checkpoints.infer import infer_architecture
from engine.errors import KdcamError
from engine.models import TappedModel, architectures, build_model

INPUT = torch.Generator().manual_seed(0)
X = torch.randn(3, 3, 32, 32, generator=INPUT)


@pytest.fixture()
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "ws").ensure()


@pytest.fixture()
def store(workspace: Workspace) -> CheckpointStore:
    return CheckpointStore(workspace.checkpoints)


def trained_like(arch: str, classes: int = 10, width: float = 0.25) -> TappedModel:
    """A model with non-trivial BN statistics, so a wrong mapping would change the logits."""
    torch.manual_seed(3)
    model = build_model(arch, classes, width)
    with torch.no_grad():
        model.train()(torch.randn(8, 3, 32, 32))
    return model.eval()


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(X)


def import_file(store: CheckpointStore, workspace: Workspace, path: Path, **kwargs) -> tuple:
    meta = import_checkpoint(ImportSpec(str(workspace.root), str(path), **kwargs))
    model, loaded_meta = store.load(meta.name)
    assert loaded_meta == meta
    return model, meta


def rename_keys(state: dict, rules: list[tuple[str, str]]) -> dict:
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        renamed[key] = value
    return renamed


# ---- formats ---------------------------------------------------------------------------------

def _bare(state: dict, path: Path) -> None:
    torch.save(state, path)


def _legacy(state: dict, path: Path) -> None:
    torch.save(state, path, _use_new_zipfile_serialization=False)


def _repdistiller_container(state: dict, path: Path) -> None:
    optimizer = {"state": {0: {"momentum_buffer": torch.zeros(3)}}, "param_groups": [{"lr": 0.05, "params": [0]}]}
    torch.save({"epoch": 240, "model": state, "accuracy": torch.tensor(73.25), "optimizer": optimizer}, path)


def _data_parallel_state_dict(state: dict, path: Path) -> None:
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "best_acc": 0.7}, path)


def _net_container(state: dict, path: Path) -> None:
    torch.save({"net": state, "acc": 91.0, "epoch": 12}, path, _use_new_zipfile_serialization=False)


def _safetensors(state: dict, path: Path) -> None:
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))


def _without_bn_counters(state: dict, path: Path) -> None:
    """Files written before PyTorch 0.4.1 have no num_batches_tracked buffers."""
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)


FORMATS: dict[str, tuple[Callable[[dict, Path], None], str]] = {
    "bare state dict": (_bare, "model.pt"),
    "legacy non-zip file": (_legacy, "legacy.pth"),
    "RepDistiller container with optimizer": (_repdistiller_container, "ckpt_epoch_240.pth"),
    "DataParallel module. prefix": (_data_parallel_state_dict, "best.th"),
    "net container, legacy": (_net_container, "ckpt.pth"),
    "safetensors": (_safetensors, "weights.safetensors"),
    "no num_batches_tracked": (_without_bn_counters, "old.pt"),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_file_format_round_trips_to_identical_logits(fmt: str, store, workspace, tmp_path) -> None:
    writer, filename = FORMATS[fmt]
    original = trained_like("resnet20", classes=10, width=0.5)
    writer(original.state_dict(), tmp_path / filename)
    model, meta = import_file(store, workspace, tmp_path / filename)
    assert (meta.arch, meta.width, meta.num_classes) == ("resnet20", 0.5, 10)
    assert torch.equal(logits(model), logits(original))
    assert meta.source_sha256 == hashlib.sha256((tmp_path / filename).read_bytes()).hexdigest()
    assert meta.source_path == str((tmp_path / filename).resolve())
    assert meta.name == Path(filename).stem


def test_container_extras_become_metadata(store, workspace, tmp_path) -> None:
    original = trained_like("vgg8")
    _repdistiller_container(original.state_dict(), tmp_path / "teacher.pth")
    _, meta = import_file(store, workspace, tmp_path / "teacher.pth", name="vgg8-teacher", role="teacher")
    assert (meta.name, meta.role, meta.epochs) == ("vgg8-teacher", "teacher", 240)
    assert meta.accuracy == pytest.approx(0.7325)


def test_numpy_scalars_beside_the_weights_are_accepted(store, workspace, tmp_path) -> None:
    """Scripts often store best_acc/epoch as numpy values; those are data, not code."""
    import numpy as np

    torch.save({"model": trained_like("vgg8").state_dict(), "best_acc": np.float64(68.5), "epoch": np.int64(30),
                "history": np.arange(3, dtype=np.float32)}, tmp_path / "np.pth")
    _, meta = import_file(store, workspace, tmp_path / "np.pth")
    assert (meta.accuracy, meta.epochs) == (pytest.approx(0.685), 30)


def test_repdistiller_vgg_layout_is_mapped(store, workspace, tmp_path) -> None:
    original = trained_like("vgg13", classes=100)
    foreign = rename_keys(original.state_dict(), [(r"^stage(\d)", lambda m: f"block{int(m.group(1)) - 1}")])
    assert "block0.0.weight" in foreign and "block4.4.running_var" in foreign and "classifier.weight" in foreign
    torch.save({"model": foreign, "epoch": 240}, tmp_path / "vgg13_best.pth")
    model, meta = import_file(store, workspace, tmp_path / "vgg13_best.pth")
    assert (meta.arch, meta.num_classes) == ("vgg13", 100)
    assert torch.equal(logits(model), logits(original))


@pytest.mark.parametrize(("arch", "rules"), [
    # RepDistiller / mdistiller resnet.py: conv1/bn1 stem, downsample, fc
    ("resnet32", [(r"^stem\.0\.", "conv1."), (r"^stem\.1\.", "bn1."), (r"\.shortcut\.", ".downsample.")]),
    # mdistiller resnetv2.py / pytorch-cifar ResNet18: conv1/bn1 stem, shortcut, linear
    ("resnet18", [(r"^stem\.0\.", "conv1."), (r"^stem\.1\.", "bn1."), (r"^fc\.", "linear.")]),
])
def test_cifar_resnet_layouts_are_mapped(arch: str, rules, store, workspace, tmp_path) -> None:
    original = trained_like(arch, classes=100)
    foreign = rename_keys(original.state_dict(), rules)
    assert "conv1.weight" in foreign and "bn1.running_mean" in foreign
    torch.save({"net": {f"module.{k}": v for k, v in foreign.items()}}, tmp_path / f"{arch}.pth")
    model, meta = import_file(store, workspace, tmp_path / f"{arch}.pth")
    assert meta.arch == arch
    assert torch.equal(logits(model), logits(original))


# ---- inference -------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", architectures())
def test_architecture_width_and_classes_are_inferred_for_every_registry_model(arch: str) -> None:
    for width, classes in ((0.25, 7), (0.5, 100)):
        with torch.device("meta"):
            state = build_model(arch, classes, width).state_dict()
        inferred = infer_architecture(state, "file.pt")
        assert (inferred.arch, inferred.width, inferred.num_classes, inferred.in_channels) == (arch, width, classes, 3)


def test_grey_input_models_are_recognised(store, workspace, tmp_path) -> None:
    torch.manual_seed(0)
    original = build_model("vgg8", 10, 0.25, in_channels=1).eval()
    torch.save(original.state_dict(), tmp_path / "mnist_vgg8.pt")
    model, meta = import_file(store, workspace, tmp_path / "mnist_vgg8.pt", mean=(0.1307,), std=(0.3081,))
    assert (meta.in_channels, meta.mean, meta.std) == (1, (0.1307,), (0.3081,))
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), original(x))


def test_explicit_arch_is_used_and_mismatch_names_the_tensors(store, workspace, tmp_path) -> None:
    torch.save(trained_like("vgg8").state_dict(), tmp_path / "v.pt")
    _, meta = import_file(store, workspace, tmp_path / "v.pt", arch="vgg8", name="ok")
    assert meta.arch == "vgg8"
    before = snapshot(store.directory)
    with pytest.raises(KdcamError) as err:
        import_checkpoint(ImportSpec(str(workspace.root), str(tmp_path / "v.pt"), arch="vgg11", name="wrong"))
    assert "do not fit vgg11" in str(err.value) and "missing tensors: stage3.3.weight" in str(err.value)
    assert str(tmp_path / "v.pt") in str(err.value)
    assert snapshot(store.directory) == before


# ---- normalisation -----------------------------------------------------------------------------

def test_normalisation_defaults_from_the_dataset_and_can_be_overridden(store, workspace, tmp_path) -> None:
    from engine.data import shapes

    torch.save(trained_like("resnet20", classes=20).state_dict(), tmp_path / "s.pt")
    _, meta = import_file(store, workspace, tmp_path / "s.pt", name="from-dataset", dataset="shapes")
    assert (meta.mean, meta.std) == (shapes.MEAN, shapes.STD)
    assert meta.class_names == shapes.class_names(20)
    _, meta = import_file(store, workspace, tmp_path / "s.pt", name="cifar", dataset="cifar100")
    assert meta.mean == pytest.approx((0.5071, 0.4865, 0.4409))
    _, meta = import_file(store, workspace, tmp_path / "s.pt", name="own", dataset="shapes",
                          mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    assert (meta.mean, meta.std, meta.dataset) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6), "shapes")
    with pytest.raises(KdcamError, match="3 channels"):
        import_checkpoint(ImportSpec(str(workspace.root), str(tmp_path / "s.pt"), name="bad", mean=(0.5,), std=(0.5,)))


# ---- user model classes ----------------------------------------------------------------------

USER_MODEL = '''
import torch
from torch import nn

class TinyNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.deeper = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.deeper(self.features(x))
        return self.head(x.mean(dim=(2, 3)))
'''


def test_user_model_class_round_trips_and_exposes_taps(store, workspace, tmp_path) -> None:
    (tmp_path / "tiny.py").write_text(USER_MODEL)
    namespace: dict = {}
    exec(compile(USER_MODEL, "tiny.py", "exec"), namespace)
    torch.manual_seed(0)
    original = namespace["TinyNet"](num_classes=6).eval()
    torch.save({"model": original.state_dict()}, tmp_path / "tiny.pth")
    model, meta = import_file(store, workspace, tmp_path / "tiny.pth", model_def=f"{tmp_path / 'tiny.py'}:TinyNet")
    assert (meta.arch, meta.num_classes) == ("TinyNet", 6)
    assert meta.model_def == f"model-defs/{meta.model_def_sha256}.py:TinyNet"
    assert torch.equal(logits(model), logits(original))
    assert model.tap_names == ("features", "deeper") and model.default_cam_tap == "deeper"
    with torch.no_grad():
        _, taps = model.forward_taps(X)
    assert taps["deeper"].shape == (3, 16, 16, 16)


def test_user_model_errors_are_clear(store, workspace, tmp_path) -> None:
    (tmp_path / "tiny.py").write_text(USER_MODEL)
    torch.save(trained_like("vgg8").state_dict(), tmp_path / "v.pt")
    with pytest.raises(KdcamError, match="no nn.Module class or factory function named 'Nope'"):
        import_checkpoint(ImportSpec(str(workspace.root), str(tmp_path / "v.pt"), model_def=f"{tmp_path / 'tiny.py'}:Nope"))
    with pytest.raises(KdcamError, match="tensors do not fit TinyNet: missing tensors: features.0.weight"):
        import_checkpoint(ImportSpec(str(workspace.root), str(tmp_path / "v.pt"), model_def=f"{tmp_path / 'tiny.py'}:TinyNet"))
    assert snapshot(store.directory) == []


# ---- bad input ---------------------------------------------------------------------------------

def snapshot(directory: Path) -> list[tuple[str, str]]:
    """Every file in the store (hidden temporaries and the journal included; not the writer lock, which
    names its last holder) with a hash of its bytes."""
    return sorted((str(p.relative_to(directory)), hashlib.sha256(p.read_bytes()).hexdigest())
                  for p in directory.rglob("*") if p.is_file() and p.name != ".lock")


class _WritesFile:
    """A pickle payload that creates a file when unpickled with plain pickle / weights_only=False."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _zip_truncated(path: Path) -> None:
    torch.save(trained_like("vgg8").state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _legacy_truncated(path: Path) -> None:
    _legacy(trained_like("vgg8").state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _safetensors_truncated(path: Path) -> None:
    _safetensors(trained_like("vgg8").state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])


def _random_bytes(path: Path) -> None:
    path.write_bytes(b"\x13" + torch.randint(0, 256, (4096,), generator=INPUT, dtype=torch.uint8).numpy().tobytes())


def _whole_module(path: Path) -> None:
    torch.save(trained_like("vgg8"), path)


def _unknown_tensors(path: Path) -> None:
    torch.save({"encoder.layers.0.weight": torch.zeros(4, 4), "decoder.bias": torch.zeros(4)}, path)


def _extra_tensor(path: Path) -> None:
    torch.save({**trained_like("vgg8").state_dict(), "aux_head.weight": torch.zeros(3, 3)}, path)


def _wrong_shape(path: Path) -> None:
    state = trained_like("vgg8").state_dict()
    state["stage3.0.weight"] = torch.zeros(64, 32, 1, 1)
    torch.save(state, path)


def _no_tensors(path: Path) -> None:
    torch.save({"epoch": 3, "accuracy": 0.5, "args": {"lr": 0.1}}, path)


BAD_FILES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "empty": (lambda p: p.write_bytes(b""), "model.pt", "the file is empty"),
    "random bytes": (_random_bytes, "model.pth", "not a PyTorch or safetensors checkpoint"),
    "truncated zip": (_zip_truncated, "model.pt", "truncated or corrupt"),
    "truncated legacy": (_legacy_truncated, "model.pth", "truncated or corrupt"),
    "truncated safetensors": (_safetensors_truncated, "model.safetensors", "not a readable safetensors file"),
    "random safetensors": (_random_bytes, "model.safetensors", "not a readable safetensors file"),
    "pickled nn.Module": (_whole_module, "model.pt", "refused because loading it would execute code"),
    "unknown tensor names": (_unknown_tensors, "model.pt", "unknown tensor names (encoder.layers.0.weight"),
    "extra tensor": (_extra_tensor, "model.pt", "unknown tensors: aux_head.weight"),
    "wrong shape": (_wrong_shape, "model.pt", "stage3.0.weight (64, 32, 1, 1) vs (64, 32, 3, 3)"),
    "no state dict": (_no_tensors, "model.pt", "no state dict found"),
    "unsupported suffix": (lambda p: p.write_bytes(b"x"), "model.bin", "unsupported file type '.bin'"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_get_one_clear_error_and_leave_the_store_unchanged(case: str, store, workspace, tmp_path) -> None:
    torch.save(trained_like("resnet20").state_dict(), tmp_path / "good.pt")
    import_checkpoint(ImportSpec(str(workspace.root), str(tmp_path / "good.pt")))
    before = snapshot(store.directory)
    make, filename, message = BAD_FILES[case]
    path = tmp_path / filename
    make(path)
    with pytest.raises(KdcamError) as err:
        import_checkpoint(ImportSpec(str(workspace.root), str(path)))
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert snapshot(store.directory) == before


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_malicious_pickle_is_refused_and_its_code_never_runs(legacy: bool, store, workspace, tmp_path) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    torch.save({"model": _WritesFile(marker), "epoch": 1}, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(KdcamError) as err:
        import_checkpoint(ImportSpec(str(workspace.root), str(path)))
    assert "refused because loading it would execute code" in str(err.value)
    assert "system" in str(err.value)
    assert not marker.exists()
    assert snapshot(store.directory) == []


def test_raw_pickle_names_what_it_would_run(store, workspace, tmp_path) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(_WritesFile(marker), protocol=4))
    with pytest.raises(KdcamError, match=r"refused because loading it would execute code \(its pickle calls posix.system\)"):
        import_checkpoint(ImportSpec(str(workspace.root), str(path)))
    assert not marker.exists()


def test_existing_names_are_never_overwritten(store, workspace, tmp_path) -> None:
    torch.save(trained_like("vgg8").state_dict(), tmp_path / "a.pt")
    import_checkpoint(ImportSpec(str(workspace.root), str(tmp_path / "a.pt"), name="mine"))
    before = snapshot(store.directory)
    torch.save(trained_like("resnet20").state_dict(), tmp_path / "b.pt")
    with pytest.raises(KdcamError, match="'mine' already exists"):
        import_checkpoint(ImportSpec(str(workspace.root), str(tmp_path / "b.pt"), name="mine"))
    with pytest.raises(KdcamError, match="invalid checkpoint name"):
        import_checkpoint(ImportSpec(str(workspace.root), str(tmp_path / "b.pt"), name="../escape"))
    assert snapshot(store.directory) == before
