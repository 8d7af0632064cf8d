"""Reading finished analyses (``analyses/ID/``) without torch, validated: the TUI, CLI and reports use this.

The format is documented in ``docs/RESULTS_SCHEMA.md``. ``results.json`` becomes a typed
``AnalysisResults``; every array file is checked (dtype, shape against results.json, file
size against its header) before it is memory-mapped, so a truncated or forged file gives
one clear error instead of a crash mid-screen. Large arrays stay memory-mapped so browsing
ten thousand images touches only the rows on screen.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.api.names import check_id
from engine.api.results import AnalysisResults
from engine.api.validate import Fields, read_json_file
from engine.api.workspace import Workspace
from engine.errors import KdcamError

RESULTS_FILE = "results.json"
MAP_KINDS = ("attention", "sanity", "diagnosis_true", "diagnosis_pred")
#: per_image.npz is a few floats per image and model; anything larger is refused before decompressing
MAX_PER_IMAGE_BYTES = 2 * 1024**3

#: per_image.npz: key -> (dtype kinds allowed, rows: "N" | "M" | "S" | "A" | "MxN" | "SxN" | "AxN")
PER_IMAGE_LAYOUT: dict[str, tuple[str, str]] = {
    "indices": ("iu", "N"), "labels": ("iu", "N"), "models": ("U", "M"),
    "preds": ("iu", "MxN"), "correct": ("b", "MxN"), "confidences": ("f", "MxN"), "true_probs": ("f", "MxN"),
    "targets": ("iu", "MxN"), "degenerate": ("b", "MxN"), "pointing_game": ("f", "MxN"),
    "energy_in_mask": ("f", "MxN"), "students": ("U", "S"),
    "pearson": ("f", "SxN"), "l2_similarity": ("f", "SxN"), "iou": ("f", "SxN"), "kl": ("f", "SxN"),
    "spearman": ("f", "SxN"), "peak_distance": ("f", "SxN"), "output_kl": ("f", "SxN"), "agreement": ("f", "SxN"),
    "attention_models": ("U", "A"), "attention_pearson": ("f", "AxN"), "attention_peak_distance": ("f", "AxN"),
    "energy_on_distractors": ("f", "MxN"), "energy_on_cue": ("f", "MxN"), "cue_labels": ("iu", "N"),
}
#: arrays only some analyses have: attention models, and datasets that mark distractors or a cue
#: (files written before those were added lack them)
OPTIONAL_PER_IMAGE = frozenset({"attention_models", "attention_pearson", "attention_peak_distance",
                                "energy_on_distractors", "energy_on_cue", "cue_labels"})


@dataclass(frozen=True)
class AnalysisInfo:
    """One line of an analysis list: enough to show and pick it without loading arrays."""

    id: str
    path: Path
    created: str
    teacher: str
    students: tuple[str, ...]
    dataset: str
    n: int
    method: str
    target: str
    bands: dict[str, str]  # student -> overall band
    split: str  # the dataset split analysed


@dataclass(frozen=True)
class UnreadableAnalysis:
    """An analysis directory kdcam cannot read, and why."""

    id: str
    path: Path
    reason: str


def _workspace(ws: Workspace | str | Path) -> Workspace:
    return ws if isinstance(ws, Workspace) else Workspace.open(ws)


def check_analysis_id(analysis_id: str) -> str:
    return check_id("analysis id", analysis_id)


def analysis_dir(ws: Workspace | str | Path, analysis_id: str) -> Path:
    """The directory of analysis ``analysis_id``; refuses ids that would leave ``analyses/``."""
    return _workspace(ws).analyses / check_analysis_id(analysis_id)


def read_results(path: Path) -> AnalysisResults:
    """Parse and validate one ``results.json``."""
    return AnalysisResults.from_fields(Fields(read_json_file(path), str(path)))


def scan_analyses(ws: Workspace | str | Path) -> tuple[list[AnalysisInfo], list[UnreadableAnalysis]]:
    """Every complete analysis, newest first, and the ones whose results.json fails validation.

    Hidden directories (analyses still being written) are skipped.
    """
    root = _workspace(ws).analyses
    if not root.is_dir():
        return [], []
    infos, broken = [], []
    for path in root.iterdir():
        if path.name.startswith(".") or not path.is_dir() or not (path / RESULTS_FILE).exists():
            continue
        try:  # a folder name that is not an id (a stranger's '[b]x') is broken, never listed as an analysis
            infos.append(_info(path, read_results(root / check_analysis_id(path.name) / RESULTS_FILE)))
        except KdcamError as exc:
            broken.append(UnreadableAnalysis(path.name, path, str(exc)))
    return sorted(infos, key=lambda info: (info.created, info.id), reverse=True), sorted(broken, key=lambda b: b.id)


def list_analyses(ws: Workspace | str | Path) -> list[AnalysisInfo]:
    """The readable analyses, newest first (``scan_analyses`` also names the unreadable ones)."""
    return scan_analyses(ws)[0]


def _info(path: Path, results: AnalysisResults) -> AnalysisInfo:
    return AnalysisInfo(
        id=path.name, path=path, created=results.created, teacher=results.teacher.name,
        students=tuple(p.student for p in results.pairs), dataset=results.dataset.spec, n=results.dataset.n,
        method=results.cam.method, target=results.cam.target, bands={p.student: p.band for p in results.pairs},
        split=results.dataset.split,
    )


def load_results(ws: Workspace | str | Path, analysis_id: str) -> AnalysisResults:
    """The validated ``results.json``; a clear error when missing, unreadable, malformed or too new."""
    path = analysis_dir(ws, analysis_id) / RESULTS_FILE
    if not path.exists():
        known = ", ".join(info.id for info in list_analyses(ws)) or "none"
        raise KdcamError(f"no analysis {analysis_id!r} in {path.parent.parent} (known: {known})")
    return read_results(path)


def open_npy(path: Path, dtype_kind: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Memory-map a .npy after checking its header: dtype kind, shape (None = any) and the file's length."""
    if not path.is_file():
        raise KdcamError(f"{path}: missing analysis file")
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            header = read_header(handle, max_header_size=10_000)
            offset = handle.tell()
    except (ValueError, OSError, SyntaxError) as exc:
        raise KdcamError(f"{path}: not a NumPy array file ({exc})") from None
    file_shape, fortran, dtype = header
    if dtype.hasobject or dtype.kind != dtype_kind or fortran:
        raise KdcamError(f"{path}: holds {dtype} arrays; expected {_KIND_NAMES.get(dtype_kind, dtype_kind)}")
    if len(file_shape) != len(shape) or any(want is not None and got != want for got, want in
                                             zip(file_shape, shape, strict=True)):
        want_text = " x ".join("*" if s is None else str(s) for s in shape)
        raise KdcamError(f"{path}: shape {file_shape}, expected {want_text}")
    expected = offset + int(np.prod(file_shape, dtype=np.int64)) * dtype.itemsize
    if path.stat().st_size < expected:
        raise KdcamError(f"{path}: truncated ({path.stat().st_size} bytes, the header promises {expected})")
    array: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    return array


_KIND_NAMES = {"u": "uint8", "b": "bool", "f": "floats", "i": "integers", "U": "strings"}


@dataclass
class AnalysisFiles:
    """One analysis opened through the validating readers: results, per-image arrays, and maps on demand."""

    workspace: Workspace
    id: str
    path: Path
    results: AnalysisResults
    per_image: dict[str, np.ndarray]
    _maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _images: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def open(cls, ws: Workspace | str | Path, analysis_id: str) -> AnalysisFiles:
        workspace = _workspace(ws)
        results = load_results(workspace, analysis_id)
        path = analysis_dir(workspace, analysis_id)
        per_image = read_per_image(path / "per_image.npz", results)
        return cls(workspace, analysis_id, path, results, per_image)

    @property
    def model_names(self) -> list[str]:
        return [str(name) for name in self.per_image["models"]]

    @property
    def student_names(self) -> list[str]:
        return [str(name) for name in self.per_image["students"]]

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.results.dataset.class_names

    def class_name(self, k: int) -> str:
        names = self.class_names
        return names[k] if 0 <= k < len(names) else str(k)

    @property
    def n(self) -> int:
        return self.results.dataset.n

    def _image_shape(self) -> tuple[int, int]:
        size = self.results.dataset.image_size
        return size, size

    @property
    def images(self) -> np.ndarray:
        """uint8 N x H x W x C analysed images (memory-mapped)."""
        if self._images is None:
            d = self.results.dataset
            self._images = open_npy(self.path / "images.npy", "u", (d.n, *self._image_shape(), d.channels))
        return self._images

    def masks(self) -> np.ndarray | None:
        """bool N x H x W object masks, or None when the dataset has none."""
        if not self.results.dataset.has_masks:
            return None
        return open_npy(self.path / "masks.npy", "b", (self.n, *self._image_shape()))

    def maps(self, model: str) -> np.ndarray:
        """uint8 N x H x W maps of ``model`` (divide by 255 for [0, 1])."""
        if model not in self._maps:
            self._maps[model] = open_npy(self.path / "maps" / f"{_safe(model)}.npy", "u",
                                         (self.n, *self._image_shape()))
        return self._maps[model]

    def extra_maps(self, kind: str, model: str) -> np.ndarray | None:
        """Maps beyond the main ones (``attention``, ``sanity``, ``diagnosis_true``, ``diagnosis_pred``), or None."""
        paths = {
            "attention": self.path / "attention" / f"{_safe(model)}.npy",
            "sanity": self.path / "sanity" / f"{_safe(model)}.npy",
            "diagnosis_true": self.path / "diagnosis" / f"{_safe(model)}_true.npy",
            "diagnosis_pred": self.path / "diagnosis" / f"{_safe(model)}_pred.npy",
        }
        if kind not in paths:
            raise KdcamError(f"unknown map kind {kind!r}; choose one of: {', '.join(MAP_KINDS)}")
        path = paths[kind]
        rows = self.n if kind == "attention" else None
        return open_npy(path, "u", (rows, *self._image_shape())) if path.is_file() else None


def read_per_image(path: Path, results: AnalysisResults) -> dict[str, np.ndarray]:
    """Every array of ``per_image.npz``, checked against results.json (image count, model and student lists)."""
    if not path.is_file():
        raise KdcamError(f"{path}: missing analysis file")
    try:
        with zipfile.ZipFile(path) as archive:
            claimed = sum(info.file_size for info in archive.infolist())
        if claimed > MAX_PER_IMAGE_BYTES:
            raise KdcamError(f"{path}: claims {claimed} bytes uncompressed; refused (limit {MAX_PER_IMAGE_BYTES})")
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except KdcamError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise KdcamError(f"{path}: unreadable or truncated ({type(exc).__name__}: {exc})") from None
    n = results.dataset.n
    sizes = {"N": n, "M": len(results.models), "S": len(results.pairs),
             "A": len(arrays["attention_models"]) if "attention_models" in arrays else 0}
    for key, (kinds, layout) in PER_IMAGE_LAYOUT.items():
        if key not in arrays:
            if key in OPTIONAL_PER_IMAGE:
                continue
            raise KdcamError(f"{path}: array {key!r} missing")
        array = arrays[key]
        want = tuple(sizes[part] for part in layout.split("x"))
        if array.dtype.kind not in kinds or array.shape != want:
            raise KdcamError(f"{path}: array {key!r} is {array.dtype} {array.shape}, expected "
                             f"{_KIND_NAMES.get(kinds[0], kinds)} of shape {want}")
    if [str(m) for m in arrays["models"]] != [m.name for m in results.models]:
        raise KdcamError(f"{path}: models {list(arrays['models'])} differ from results.json's")
    if [str(s) for s in arrays["students"]] != [p.student for p in results.pairs]:
        raise KdcamError(f"{path}: students {list(arrays['students'])} differ from results.json's")
    for key in ("labels", "cue_labels"):
        values = arrays.get(key)
        if values is not None and len(values) and (values.min() < 0 or values.max() >= results.dataset.num_classes):
            raise KdcamError(f"{path}: {key} outside [0, {results.dataset.num_classes})")
    return arrays


def _safe(model: str) -> str:
    """Model names become file names; refuse anything that could escape the directory."""
    return check_id("model name", model)
