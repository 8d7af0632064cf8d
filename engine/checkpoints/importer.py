"""Import a foreign checkpoint file into a workspace's store.

Steps: read the file without running code (``safe_load``), find the architecture
(``--arch``, ``--model-def`` or inference from tensor names and shapes), load the tensors
strictly into a freshly built model, check it runs, then save it in the native format
with metadata (normalisation, dataset, provenance). Every check happens before the
first byte is written, and the store's own writes are atomic, so a failed import leaves
the store exactly as it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.api import trust
from engine.api.catalogue import ROLES
from engine.api.checkpoints import CheckpointMeta, check_name
from engine.api.model_code import ModelSource, check_model_args, copy_into_store, read_user_file, split_model_def
from engine.api.specs import ImportSpec
from engine.api.workspace import Workspace
from engine.checkpoints.building import load_state_strict, with_counters
from engine.checkpoints.infer import infer_architecture
from engine.checkpoints.normalisation import DatasetFacts, dataset_facts
from engine.checkpoints.safe_load import read_checkpoint
from engine.checkpoints.store import CheckpointStore
from engine.checkpoints.user_model import UserModel, instantiate, load_definition
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.models import TappedModel, build_model, native_input_size


def run_import_job(spec: ImportSpec, ctx: JobContext) -> CheckpointMeta:
    """Job entry point: import ``spec.path`` into ``spec.workspace``'s store; returns the metadata."""
    return import_checkpoint(spec, ctx)


def import_checkpoint(request: ImportSpec, ctx: JobContext | None = None) -> CheckpointMeta:
    """Validate, convert and save one file into the request's workspace; raises KdcamError
    (store untouched) on any problem. None fields mean "infer it" or "the dataset's default"."""
    workspace = Workspace.open(request.workspace)
    store = CheckpointStore(workspace.checkpoints)
    path = Path(request.path).expanduser().absolute()  # messages name a symlink, not its target
    name = check_name(request.name or default_name(path))
    taken = store.taken(name)
    if taken is not None:
        raise KdcamError(f"cannot import as {name!r}: {taken}; choose another with --name")
    _check_request(request)
    steps = 4
    _progress(ctx, 0, steps, f"reading {path.name}")
    loaded = read_checkpoint(path)
    digest = sha256_of(path)
    for note in loaded.notes:
        _log(ctx, f"{path.name}: {note}")
    _check_cancelled(ctx)

    _progress(ctx, 1, steps, "matching an architecture")
    user: UserDefinition | None = None
    if request.model_def:
        user = _user_model(request, loaded.state, path)
        model, arch, width, in_channels = user.model, user.name, 1.0, user.in_channels
    else:
        inferred = infer_architecture(loaded.state, str(path), request.arch, request.num_classes, request.width)
        if inferred.layout != "kdcam":
            _log(ctx, f"{path.name}: mapped the {inferred.layout} layout onto kdcam's {inferred.arch}")
        model = build_model(inferred.arch, inferred.num_classes, inferred.width, inferred.in_channels)
        load_state_strict(model, inferred.state, str(path))
        arch, width, in_channels = inferred.arch, inferred.width, inferred.in_channels
    _check_cancelled(ctx)

    _progress(ctx, 2, steps, "checking the model runs")
    facts = dataset_facts(request.dataset, workspace, in_channels) if request.dataset else None
    input_size = facts.input_size if facts else native_input_size(arch)
    _check_runs(model, in_channels, input_size, path)
    mean, std = _normalisation(request, facts, in_channels, ctx)
    class_names = _class_names(request.dataset, facts, model.num_classes, ctx)

    _progress(ctx, 3, steps, f"saving {name}")
    meta = CheckpointMeta(
        name=name, arch=arch, num_classes=model.num_classes, width=width, in_channels=in_channels,
        input_size=input_size, resize=_resize(request.dataset), mean=mean, std=std, dataset=request.dataset,
        class_names=class_names,
        role=request.role, accuracy=loaded.accuracy, epochs=loaded.epoch, source_path=str(path),
        source_sha256=digest,
    )
    if user is not None:
        meta = _with_user_code(meta, user, store, ctx)
    saved = store.save(name, model, meta)
    _progress(ctx, steps, steps, f"imported {name} ({arch})")
    return saved


def default_name(path: Path) -> str:
    """The file's stem made into a valid checkpoint name."""
    stem = re.sub(r"[^A-Za-z0-9._+-]+", "-", path.stem).strip("-._+") or "imported"
    return stem[:120]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class UserDefinition:
    """A model built from the user's ``--model-def`` file, and what the metadata records of it."""

    model: TappedModel
    name: str  # the class or factory name
    source: ModelSource
    args: dict[str, Any]
    in_channels: int


def _user_model(request: ImportSpec, state: dict[str, torch.Tensor], path: Path) -> UserDefinition:
    """Run the user's file (they named it: that is the request to run it) and load the tensors.

    The bytes read here are the ones executed, copied into the store and trusted, so what
    later runs is exactly what ran now. Tensors go under ``net.`` when the model is wrapped.
    """
    path_text, def_name = split_model_def(request.model_def or "")
    source = read_user_file(path_text)
    args = check_model_args(request.model_args or {})
    in_channels = next((int(v.shape[1]) for v in state.values() if v.dim() == 4), 3)
    # a definition taking num_classes gets the classifier's output count unless told otherwise
    classifier = [v for v in state.values() if v.dim() == 2]
    num_classes = request.num_classes or (int(classifier[-1].shape[0]) if classifier else None)
    factory = load_definition(source, def_name)
    model = instantiate(factory, args, num_classes, source.origin, in_channels)
    target = model.net if isinstance(model, UserModel) else model
    load_state_strict(target, with_counters(target, state), str(path))
    return UserDefinition(model, def_name, source, args, in_channels)


def _with_user_code(meta: CheckpointMeta, user: UserDefinition, store: CheckpointStore,
                    ctx: JobContext | None) -> CheckpointMeta:
    """Copy the model code into the store, trust that content, and point the metadata at the copy."""
    relative = copy_into_store(store.directory, user.source)
    trust.trust(user.source.sha256, user.source.origin)
    _log(ctx, f"copied {user.source.origin} into the store as {relative} and trusted it "
         f"(sha256 {user.source.sha256})")
    return dataclasses.replace(meta, model_def=f"{relative}:{user.name}", model_def_sha256=user.source.sha256,
                               model_args=user.args or None)


def _resize(dataset: str | None) -> int | None:
    """The shorter side an ``imagefolder:...?resize=N`` spec scales images to before its centre crop."""
    if dataset is None:
        return None
    from engine.data.registry import parse_spec

    spec = parse_spec(dataset)
    return spec.int_option("resize", 0) or None if spec.kind == "imagefolder" else None


def _check_runs(model: torch.nn.Module, in_channels: int, input_size: int, path: Path) -> None:
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.zeros(2, in_channels, input_size, input_size))
    except Exception as exc:
        raise KdcamError(f"{path}: the loaded model fails on a {input_size}x{input_size} input: {exc}") from None
    if not torch.isfinite(logits).all():
        raise KdcamError(f"{path}: the loaded model produces NaN/inf logits; the weights are damaged")


def _class_names(dataset: str | None, facts: DatasetFacts | None, num_classes: int,
                 ctx: JobContext | None) -> list[str] | None:
    """The dataset's class names, when they are known and as many as the model's outputs."""
    if facts is None or not facts.class_names:
        return None
    if len(facts.class_names) != num_classes:
        _log(ctx, f"{dataset} has {len(facts.class_names)} classes but the model has {num_classes} outputs; "
             "class names are not recorded", "warning")
        return None
    return facts.class_names


def _check_request(request: ImportSpec) -> None:
    if request.arch and request.model_def:
        raise KdcamError("give either --arch or --model-def, not both")
    if request.model_args and not request.model_def:
        raise KdcamError("--model-args are the arguments of a --model-def class or function; give --model-def too")
    if request.role not in ROLES:
        raise KdcamError(f"role must be one of {', '.join(ROLES)}, got {request.role!r}")
    if (request.mean is None) != (request.std is None):
        raise KdcamError("give --mean and --std together")
    if request.std is not None and any(s <= 0 for s in request.std):
        raise KdcamError(f"--std values must be positive, got {request.std}")


def _normalisation(
    request: ImportSpec, facts: DatasetFacts | None, in_channels: int, ctx: JobContext | None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Explicit --mean/--std win; else the dataset's defaults; else kdcam's generic default (with a warning)."""
    if request.mean is not None and request.std is not None:
        mean, std = tuple(request.mean), tuple(request.std)
    elif facts is not None:
        mean, std = facts.mean, facts.std
    else:
        mean, std = (0.5,) * in_channels, (0.25,) * in_channels
        _log(ctx, f"no --dataset or --mean/--std given: assuming mean {mean} and std {std}", "warning")
    if len(mean) != in_channels or len(std) != in_channels:
        raise KdcamError(
            f"normalisation has {len(mean)} mean / {len(std)} std values but the model takes {in_channels} channels"
        )
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _progress(ctx: JobContext | None, done: int, total: int, message: str) -> None:
    if ctx is not None:
        ctx.progress("import", done, total, message)


def _log(ctx: JobContext | None, message: str, level: str = "info") -> None:
    if ctx is not None:
        ctx.log(message, level)


def _check_cancelled(ctx: JobContext | None) -> None:
    if ctx is not None:
        ctx.check_cancelled()
