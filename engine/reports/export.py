"""The export job: ``analyses/ID/`` → ``exports/NAME/`` (report.html, PNGs, CSVs, results.json).

Torch-free (numpy + matplotlib Agg). The folder is built under a temporary name next to the
destination and renamed into place only when every file is written, so a failure, a full disk
or a cancel leaves nothing behind, and an existing report is replaced only with ``overwrite``.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from engine.api import atomic
from engine.api.results import ExportResult
from engine.api.specs import ExportSpec
from engine.api.workspace import Workspace
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.reports import report, tables
from engine.reports.gallery import plan_figures
from engine.reports.source import AnalysisSource

FORMATS: tuple[str, ...] = ExportSpec.formats  # every format; the default exports them all


def destination(spec: ExportSpec, workspace: Workspace) -> Path:
    """Where the report goes: ``exports/<analysis id>`` by default; a bare name is a folder under
    ``exports/`` (what the TUI asks for); a path is taken relative to the workspace (``exports/NAME``,
    ``../shared/NAME``) unless absolute."""
    if not spec.out:
        return workspace.exports / spec.analysis
    out = Path(spec.out).expanduser()
    if out.is_absolute():
        return out
    if len(out.parts) == 1 and out.name not in (".", ".."):
        return workspace.exports / out
    return workspace.root / out


def _check_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise KdcamError(f"unknown export format(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from: {', '.join(FORMATS)}")


def _prepare_destination(out: Path, overwrite: bool) -> None:
    """Refuse an existing destination (unless overwriting) and an unwritable parent, before any work."""
    if out.exists() and not overwrite:
        raise KdcamError(f"{out} already exists; choose another --out or pass --overwrite")
    if out.exists() and not out.is_dir():
        raise KdcamError(f"{out} exists and is not a directory; refusing to replace it")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KdcamError(f"cannot create {parent}: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise KdcamError(f"cannot write to {parent}: permission denied")


def _disk_error(exc: OSError, out: Path) -> KdcamError:
    if exc.errno == errno.ENOSPC:
        return KdcamError(f"no space left while writing the report to {out}; nothing was written")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return KdcamError(f"cannot write the report to {out}: {exc.strerror}; nothing was written")
    return KdcamError(f"writing the report to {out} failed: {exc.strerror or exc}; nothing was written")


def run_export_job(spec: ExportSpec, ctx: JobContext) -> ExportResult:
    """Build the report folder for ``spec.analysis``; progress per file, cancellable between figures."""
    _check_formats(tuple(spec.formats))
    if spec.examples < 1:
        raise KdcamError(f"--examples must be at least 1, got {spec.examples}")
    workspace = Workspace.open(spec.workspace)
    source = AnalysisSource.open(workspace, spec.analysis)
    out = destination(spec, workspace)
    _prepare_destination(out, spec.overwrite)
    try:
        return _build(spec, ctx, source, out)
    except OSError as exc:
        raise _disk_error(exc, out) from None


def _build(spec: ExportSpec, ctx: JobContext, source: AnalysisSource, out: Path) -> ExportResult:
    formats = set(spec.formats)
    tasks = plan_figures(source, spec.examples) if formats & {"png", "html"} else []
    csvs = list(tables.CSV_TABLES.items()) if "csv" in formats else []
    total = len(tasks) + len(csvs) + int("json" in formats) + int("html" in formats)
    written: list[str] = []
    done = 0

    def step(name: str) -> None:
        nonlocal done
        written.append(name)
        done += 1
        ctx.progress("export", done, total, name)

    # A fresh destination is built in place by atomic_directory; an existing one (--overwrite)
    # is built beside it and swapped in only once complete, so the old report survives a failure.
    replacing = out.exists()
    target = out.parent / f".{out.name}.new" if replacing else out
    if replacing:
        shutil.rmtree(target, ignore_errors=True)  # left by an export killed mid-swap
    with atomic.atomic_directory(target) as staging:
        ctx.progress("export", 0, total, f"exporting {source.id}")
        if "json" in formats:
            atomic.write_bytes(staging / "results.json", source.results_bytes())
            step("results.json")
        for name, build in csvs:
            ctx.check_cancelled()
            atomic.write_bytes(staging / name, tables.to_csv(*build(source)))
            step(name)
        pngs: dict[str, bytes] = {}
        for task in tasks:
            ctx.check_cancelled()
            pngs[task.filename] = task.draw()
            if "png" in formats:
                atomic.write_bytes(staging / "figures" / task.filename, pngs[task.filename])
                step(f"figures/{task.filename}")
            else:
                done += 1
                ctx.progress("export", done, total, task.filename)
        if "html" in formats:
            ctx.check_cancelled()
            atomic.write_text(staging / "report.html", report.render(source, tasks, pngs, written))
            step("report.html")
        ctx.check_cancelled()
        _make_readable(staging)
    if replacing:
        _swap(target, out)
    ctx.log(f"report written to {out}")
    return ExportResult(path=str(out), files=tuple(written), analysis=source.id)


def _make_readable(root: Path) -> None:
    """Temporary files and directories are created private (0600/0700); a report is meant to be
    copied, shared and served, so it gets the usual 0644/0755."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _swap(new: Path, out: Path) -> None:
    """Replace the report at ``out`` with the complete one at ``new``; the old one is removed last."""
    old = out.parent / f".{out.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(old, out)
        shutil.rmtree(new, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
