"""The export job: ``analyses/ID/`` → ``exports/NAME/`` (report.html, PNGs, CSVs, results.json).

Torch-free (numpy + matplotlib Agg). The folder is built under a temporary name next to the
destination and renamed into place only when every file is written, so a failure, a full disk
or a cancel leaves nothing behind. Every export holds a manifest (``kdcam-export.json``) that
marks it as kdcam's own: ``overwrite`` replaces only such a folder inside ``exports/``, never
the workspace, a folder holding it or a user's folder, and the old report is exchanged for the
new one in one atomic step (see ``atomic.replace_directory``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from engine.api import atomic
from engine.api.catalogue import EXPORT_FORMATS
from engine.api.exports import MANIFEST, is_export, manifest_document
from engine.api.results import ExportResult
from engine.api.specs import ExportSpec
from engine.api.sweep import sweep_directory, sweep_workspace
from engine.api.workspace import Workspace
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.reports import report, tables
from engine.reports.gallery import plan_figures
from engine.reports.seeds import OverSeeds, csv_table, find_over_seeds
from engine.reports.source import AnalysisSource


def destination(spec: ExportSpec, workspace: Workspace) -> Path:
    """Where the report goes: ``exports/<analysis id>`` by default; a bare name is a folder under
    ``exports/`` (what the TUI asks for); a path is taken relative to the workspace (``exports/NAME``,
    ``../shared/NAME``) unless absolute."""
    if not spec.out:
        return workspace.exports / spec.analysis
    out = Path(spec.out).expanduser()
    if out.is_absolute():
        return out
    if "/" not in spec.out and os.sep not in spec.out and spec.out not in (".", "..", "~"):
        return workspace.exports / out  # a bare NAME (``./NAME`` is the workspace's, as written)
    return workspace.root / out


def _check_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise KdcamError(f"unknown export format(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from: {', '.join(EXPORT_FORMATS)}")


def _resolve(path: Path) -> Path:
    """The real location (symbolic links and ``..`` resolved): decisions are made about it."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic-link loop
        raise KdcamError(f"destination {path} (--out): cannot resolve the path ({exc})") from None


def _prepare_destination(out: Path, overwrite: bool, workspace: Workspace) -> Path:
    """Decide, before any work, whether ``out`` may be written; return its resolved path.

    A new folder may go anywhere. An existing one is replaced only with ``overwrite``, only when
    it lies inside the workspace's ``exports/`` and holds a kdcam export manifest, and never when
    it is the workspace or a folder containing it."""
    real = _resolve(out)
    exports = _resolve(workspace.exports)
    if real == workspace.root or workspace.root.is_relative_to(real):
        raise KdcamError(f"destination {out} (--out) is the workspace or a folder containing it; refusing to write there")
    if os.path.lexists(real):
        if not overwrite:
            raise KdcamError(f"{out} already exists; choose another destination (--out) or allow overwriting "
                             "(--overwrite), which replaces only a previous kdcam export")
        if not real.is_relative_to(exports) or real == exports:
            raise KdcamError(f"refusing to overwrite {out}: it is outside {exports}; overwriting (--overwrite) replaces only "
                             "previous exports there (choose a new folder, or remove it yourself)")
        if not real.is_dir():
            raise KdcamError(f"refusing to overwrite {out}: it exists and is not a directory")
        if not is_export(real):
            raise KdcamError(f"refusing to overwrite {out}: it is not a kdcam export (no valid {MANIFEST}); "
                             "choose another destination (--out), or remove it yourself")
    parent = real.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KdcamError(f"cannot create {parent}: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise KdcamError(f"cannot write to {parent}: permission denied")
    return real


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
        raise KdcamError(f"examples per grid (--examples) must be at least 1, got {spec.examples}")
    workspace = Workspace.open(spec.workspace)
    source = AnalysisSource.open(workspace, spec.analysis)
    over_seeds = find_over_seeds(spec, workspace)
    out = destination(spec, workspace)
    real = _prepare_destination(out, spec.overwrite, workspace)
    sweep_workspace(workspace.root)
    sweep_directory(real.parent, only=real.name)  # an --out outside the workspace
    try:
        return _build(spec, ctx, source, real, over_seeds)
    except OSError as exc:
        raise _disk_error(exc, out) from None


def _build(spec: ExportSpec, ctx: JobContext, source: AnalysisSource, out: Path,
           over_seeds: OverSeeds | None) -> ExportResult:
    formats = set(spec.formats)
    tasks = plan_figures(source, spec.examples) if formats & {"png", "html"} else []
    csvs = list(tables.CSV_TABLES.items()) if "csv" in formats else []
    if "csv" in formats and over_seeds is not None and over_seeds.aggregate is not None:
        csvs.append(("over_seeds.csv", lambda source: csv_table(over_seeds)))
    total = len(tasks) + len(csvs) + int("json" in formats) + int("html" in formats)
    files: dict[str, bytes] = {}
    done = 0

    def put(staging: Path, name: str, data: bytes) -> None:
        nonlocal done
        atomic.write_bytes(staging / name, data)
        files[name] = data
        done += 1
        ctx.progress("export", done, total, name)

    # Built beside the destination; renamed into place when new, exchanged with the old report
    # in one step when replacing, so the name always holds one complete export.
    with atomic.staging_directory(out) as staging:
        ctx.progress("export", 0, total, f"exporting {source.id}")
        if "json" in formats:
            put(staging, "results.json", source.results_bytes())
        for name, build in csvs:
            ctx.check_cancelled()
            put(staging, name, tables.to_csv(*build(source)))
        pngs: dict[str, bytes] = {}
        for task in tasks:
            ctx.check_cancelled()
            pngs[task.filename] = task.draw()
            if "png" in formats:
                put(staging, f"figures/{task.filename}", pngs[task.filename])
            else:
                done += 1
                ctx.progress("export", done, total, task.filename)
        if "html" in formats:
            ctx.check_cancelled()
            put(staging, "report.html", report.render(source, tasks, pngs, list(files), over_seeds).encode())
        ctx.check_cancelled()
        atomic.write_json(staging / MANIFEST, manifest_document(source.id, files))
        _move_into_place(staging, out)
    ctx.log(f"report written to {out}")
    return ExportResult(path=str(out), files=tuple(files), analysis=source.id)


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename a new report into place, or exchange it with the previous export; checked again at
    the last moment, so a folder that replaced the old export meanwhile is never swapped away."""
    if not os.path.lexists(out):
        try:
            os.rename(staging, out)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise KdcamError(f"{out} appeared while the report was being written; "
                                 "nothing was replaced") from None
            raise
        return
    if out.is_symlink() or not out.is_dir() or not is_export(out):
        raise KdcamError(f"{out} changed while the report was being written and is no longer "
                         "a kdcam export; nothing was replaced")
    atomic.replace_directory(staging, out)
