"""The checkpoint store: ``NAME.safetensors`` (tensors) + ``NAME.json`` (metadata) in one directory.

A checkpoint changes as one unit. Every writer holds the store's lock (``engine.lock``), first
rolls forward any change a killed writer left half-done, then writes the new files under
``.journal/``, records the file moves in a journal (``.journal/OP.op``, written atomically) and
only then performs them; the journal is removed once every move is done. A kill at any instant
leaves either no journal (nothing changed) or a journal that the next writer, or
``kdcam checkpoints doctor --repair``, completes. Both halves carry the same ``weights_id``
(JSON key and safetensors header), so a pair from two different writes is detected.

Names: a training run reserves its names (``.reservations/NAME``) before its first epoch, so
no other run can take them; ``save`` refuses a name another run owns.

Loading uses safetensors, which holds tensors only: it cannot run code.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.api import atomic
from engine.api.checkpoints import (
    META_SUFFIX,
    WEIGHTS_SUFFIX,
    CheckpointMeta,
    check_name,
    list_checkpoints,
    meta_path,
    now_iso,
    read_meta,
    weights_path,
)
from engine.api.integrity import (
    JOURNAL_DIR,
    JOURNAL_SUFFIX,
    ORPHANS_DIR,
    RESERVATIONS_DIR,
    UNIT_KEY,
    Step,
    read_journal,
)
from engine.api.workspace import read_json
from engine.errors import KdcamError
from engine.lock import locked

if TYPE_CHECKING:
    from torch import nn

    from engine.models import TappedModel

# the class's ``list`` method shadows the builtin inside its body: these aliases are resolved outside it
Names = list[str]
Paths = list[Path]
Steps = list[Step]

#: test hook (documented in docs/ARCHITECTURE.md): with ``KDCAM_TEST_CRASH_AT=N`` the process SIGKILLs
#: itself at its Nth store file operation counted from when the variable was set (the crash tests use it)
_armed: list[Any] = ["", 0]  # [the variable's value when counting started, operations since]


def _crash_point() -> None:
    value = os.environ.get("KDCAM_TEST_CRASH_AT", "")
    if value != _armed[0]:
        _armed[:] = [value, 0]
    if value:
        _armed[1] += 1
        if _armed[1] == int(value):
            os.kill(os.getpid(), signal.SIGKILL)


class CheckpointStore:
    """One directory of checkpoints (a workspace's ``checkpoints/``)."""

    def __init__(self, directory: str | Path, on_wait: Callable[[str], None] | None = None):
        self.directory = Path(directory)
        self.on_wait = on_wait  # told once when another process holds the lock

    # ----------------------------------------------------------------- reading (no lock)
    def list(self) -> list[CheckpointMeta]:
        return list_checkpoints(self.directory)

    def exists(self, name: str) -> bool:
        return meta_path(self.directory, name).exists() and weights_path(self.directory, name).exists()

    def meta(self, name: str) -> CheckpointMeta:
        return read_meta(self.directory, name)

    def load(self, name: str, device: str = "cpu") -> tuple[TappedModel, CheckpointMeta]:
        """Rebuild the model described by the metadata and load its tensors (eval mode)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from engine.checkpoints.building import build_from_meta, load_state_strict

        meta = read_meta(self.directory, name)
        path = weights_path(self.directory, name)
        try:
            state = load_file(str(path), device=str(device))
        except (SafetensorError, OSError) as exc:
            raise KdcamError(f"checkpoint weights {path} are unreadable: {exc}") from None
        model = build_from_meta(meta, self.directory)
        load_state_strict(model, state, str(path))
        return model.to(device).eval(), meta

    # ----------------------------------------------------------------- the writer's lock
    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the store's lock, with every interrupted change rolled forward first."""
        with locked(self.directory, self.on_wait):
            self.recover()
            yield

    def recover(self) -> Paths:
        """Complete every journalled change (oldest first) and drop uncommitted temporaries.

        Called with the lock held. A journal that is unreadable or names paths outside the store
        is left in place (``scan_store`` reports it); nothing is guessed.
        """
        journal_dir = self.directory / JOURNAL_DIR
        if not journal_dir.is_dir():
            return []
        done = []
        journals = sorted((p for p in journal_dir.iterdir()
                           if p.suffix == JOURNAL_SUFFIX and not p.name.startswith(".")),
                          key=lambda p: (p.stat().st_mtime_ns, p.name))
        for journal in journals:
            try:
                steps = read_journal(journal)
            except KdcamError:
                continue
            self._apply(steps)
            journal.unlink()
            done.append(journal)
        if not any(p.suffix == JOURNAL_SUFFIX for p in journal_dir.iterdir()):
            # only a lock holder writes here: what no journal names is an uncommitted copy
            for path in journal_dir.iterdir():
                path.unlink(missing_ok=True)
        _fsync_dir(self.directory)
        return done

    # ----------------------------------------------------------------- names
    def taken(self, name: str, owner: str | None = None) -> str | None:
        """Why ``name`` cannot be given to a new checkpoint of ``owner`` (None when it is free)."""
        weights, meta = weights_path(self.directory, name), meta_path(self.directory, name)
        holder = self.reserved_by(name)
        if holder is not None and holder != owner:
            return f"a checkpoint named {name!r} is reserved by run {holder}"
        if weights.exists() and not meta.exists():
            return (f"{weights} has no metadata (an orphan; `kdcam checkpoints doctor` lists it and "
                    "`--repair` moves it to checkpoints/.orphans/)")
        if meta.exists() and not weights.exists():
            return f"{meta} has no weights (an orphan; `kdcam checkpoints doctor` lists it)"
        if meta.exists():
            if owner is not None and (read_json(meta) or {}).get("run_id") == owner:
                return None
            return f"a checkpoint named {name!r} already exists in {self.directory}"
        return None

    def reserved_by(self, name: str) -> str | None:
        data = read_json(self.directory / RESERVATIONS_DIR / check_name(name))
        if data is None:
            return "unknown" if (self.directory / RESERVATIONS_DIR / name).exists() else None
        return str(data.get("owner"))

    def free_name(self, base: str, suffixes: tuple[str, ...] = ("",)) -> str:
        """``base``, or ``base-2``, ``base-3``, ... : the first stem whose names (stem + suffix) are all free."""
        for number in range(1, 10_000):
            stem = base if number == 1 else f"{base}-{number}"
            names = [check_name(stem + suffix) for suffix in suffixes]
            if all(self.taken(n) is None for n in names):
                return stem
        raise KdcamError(f"no free checkpoint name left for {base!r} in {self.directory}")

    def reserve(self, names: Names, owner: str) -> None:
        """Hold ``names`` for run ``owner`` until ``release``; refuses a name someone else holds."""
        with self.writing():
            for name in names:
                reason = self.taken(name, owner)
                if reason is not None:
                    raise KdcamError(f"run {owner} cannot write {name!r}: {reason}; rename that checkpoint "
                                     f"(kdcam checkpoints rename {name} NEW) and try again")
            for name in names:
                _crash_point()
                atomic.write_json(self.directory / RESERVATIONS_DIR / name, {"owner": owner, "pid": os.getpid(),
                                                                             "since": now_iso()})

    def release(self, names: Names, owner: str) -> None:
        """Drop ``owner``'s reservations (its checkpoints now carry its run id in their metadata)."""
        with self.writing():
            for name in names:
                if self.reserved_by(name) == owner:
                    (self.directory / RESERVATIONS_DIR / name).unlink()

    # ----------------------------------------------------------------- writing
    def save(self, name: str, model: nn.Module, meta: CheckpointMeta, owner: str | None = None) -> CheckpointMeta:
        """Write ``model``'s tensors and ``meta`` (name, parameter count and date filled in) as one unit.

        A free name is taken; an existing checkpoint is replaced only by the run (``owner``) that
        wrote it (its best and ``-last`` checkpoints, every epoch). Anything else is refused.
        """
        from safetensors.torch import save_file

        check_name(name)
        model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper: store the plain module's names
        state = {key: tensor.detach().to("cpu").contiguous() for key, tensor in model.state_dict().items()}
        params = sum(p.numel() for p in model.parameters())
        unit = secrets.token_hex(8)
        record = {**meta.to_dict(), "name": name, "params": params, "created": meta.created or now_iso(),
                  UNIT_KEY: unit}
        header = {UNIT_KEY: unit, "run_id": str(meta.run_id or ""), "epochs": str(meta.epochs or "")}
        with self.writing():
            reason = self.taken(name, owner)
            if reason is not None:
                raise KdcamError(f"cannot save {name!r}: {reason}")
            op = self._op_id()
            weights_tmp, meta_tmp = f"{JOURNAL_DIR}/{op}{WEIGHTS_SUFFIX}", f"{JOURNAL_DIR}/{op}{META_SUFFIX}"
            try:
                _crash_point()
                atomic.write_with(self.directory / weights_tmp, lambda tmp: save_file(state, str(tmp), header))
                _crash_point()
                atomic.write_json(self.directory / meta_tmp, record)
            except BaseException:
                for tmp in (weights_tmp, meta_tmp):
                    (self.directory / tmp).unlink(missing_ok=True)
                raise
            self._commit(op, [("replace", weights_tmp, f"{name}{WEIGHTS_SUFFIX}"),
                              ("replace", meta_tmp, f"{name}{META_SUFFIX}")])
        return CheckpointMeta.from_dict(record)

    def rename(self, old: str, new: str) -> CheckpointMeta:
        """Rename both files as one unit; refuses to overwrite or take a reserved name."""
        check_name(new)
        with self.writing():
            meta = read_meta(self.directory, old)
            if old == new:
                return meta
            reason = self.taken(new)
            if reason is not None or weights_path(self.directory, new).exists():
                raise KdcamError(f"cannot rename {old!r} to {new!r}: "
                                 f"{reason or f'{weights_path(self.directory, new)} exists'}")
            op = self._op_id()
            steps: Steps = [("replace", f"{old}{WEIGHTS_SUFFIX}", f"{new}{WEIGHTS_SUFFIX}")]
            renamed = {**self._raw(old), "name": new}
            steps += self._stage(op, "0", new, renamed)
            steps.append(("unlink", f"{old}{META_SUFFIX}"))
            for number, other in enumerate(self.list(), start=1):  # students name their teacher: keep the link
                if other.teacher == old and other.name != old:
                    steps += self._stage(op, str(number), other.name, {**self._raw(other.name), "teacher": new})
            self._commit(op, steps)
        return CheckpointMeta.from_dict(renamed)

    def delete(self, name: str) -> None:
        """Remove both files as one unit."""
        with self.writing():
            read_meta(self.directory, name)
            self._commit(self._op_id(), [("unlink", f"{name}{META_SUFFIX}"), ("unlink", f"{name}{WEIGHTS_SUFFIX}")])

    def quarantine(self, paths: Paths) -> Path:
        """Move files out of the store into ``.orphans/STAMP/`` (never deleted; the user decides)."""
        with self.writing():
            target = self.directory / ORPHANS_DIR / f"{self._op_id()}"
            target.mkdir(parents=True, exist_ok=True)
            for path in paths:
                if path.exists():
                    os.replace(path, target / path.name.lstrip("."))
            _fsync_dir(self.directory)
            return target

    # ----------------------------------------------------------------- journal internals
    def _raw(self, name: str) -> dict[str, Any]:
        data = read_json(meta_path(self.directory, name))
        if not isinstance(data, dict):
            raise KdcamError(f"checkpoint metadata {meta_path(self.directory, name)} is not valid JSON")
        return data

    def _stage(self, op: str, part: str, name: str, record: dict[str, Any]) -> Steps:
        """Write ``record`` as the future ``name.json`` under the journal folder; the step that moves it."""
        tmp = f"{JOURNAL_DIR}/{op}-{part}{META_SUFFIX}"
        _crash_point()
        atomic.write_json(self.directory / tmp, record)
        return [("replace", tmp, f"{name}{META_SUFFIX}")]

    def _op_id(self) -> str:
        (self.directory / JOURNAL_DIR).mkdir(parents=True, exist_ok=True)
        return f"{now_iso().replace(':', '').replace('+0000', 'Z')}-{os.getpid()}-{secrets.token_hex(4)}"

    def _commit(self, op: str, steps: Steps) -> None:
        """Record ``steps`` durably, then perform them; from here on a kill is rolled forward."""
        journal = self.directory / JOURNAL_DIR / f"{op}{JOURNAL_SUFFIX}"
        _crash_point()
        atomic.write_text(journal, json.dumps({"steps": [list(s) for s in steps]}))
        _fsync_dir(journal.parent)
        self._apply(steps)
        _crash_point()
        journal.unlink()

    def _apply(self, steps: Steps) -> None:
        """Perform steps; each is idempotent, so replaying a journal after a kill is safe."""
        for step in steps:
            _crash_point()
            if step[0] == "replace":
                source = self.directory / step[1]
                if source.exists():
                    os.replace(source, self.directory / step[2])
            else:
                (self.directory / step[1]).unlink(missing_ok=True)
        _fsync_dir(self.directory)


def _fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable (a power cut after this keeps them)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
