"""The catalogue: every name that defines the product, defined once, torch-free.

The CLI's choices and help, the TUI's pickers and the engine's own dispatch all read these
tuples, so a method, target, metric or format added here shows up everywhere (and a test
checks that the engine's torch-side tables hold exactly these keys).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from engine.api.bands import BANDED, BANDS, THRESHOLDS
from engine.errors import KdcamError

#: CAM methods (DESIGN §5), in the order pickers show them; ``attention`` needs attention models
CAM_METHODS: Final = ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam", "attention")
DEFAULT_CAM_METHOD: Final = "gradcam"

#: what class a map explains; ``class:K`` fixes one class for every image
TARGETS: Final = ("label", "teacher", "own", "class:K")
DEFAULT_TARGET: Final = "label"

#: KD methods (DESIGN §4) and their default options, as in the public reference implementations
METHOD_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "si": {"ce_weight": 1.0},
    "ls": {"ce_weight": 1.0, "epsilon": 0.1},
    "kd": {"ce_weight": 0.1, "kd_weight": 0.9, "temperature": 4.0, "standardize": False},
    "dkd": {"ce_weight": 1.0, "alpha": 1.0, "beta": 8.0, "temperature": 4.0, "warmup_epochs": 20,
            "standardize": False},
    "hints": {"ce_weight": 1.0, "hint_weight": 100.0, "tap": "", "teacher_tap": ""},
    "crd": {
        "ce_weight": 1.0,
        "crd_weight": 0.8,
        "embed_dim": 128,
        "num_negatives": 16384,
        "temperature": 0.07,
        "momentum": 0.5,
        "mode": "nce",  # nce (paper: memory bank) | infonce (in-batch)
    },
    # warmup_epochs ramps the AT weight linearly (as DKD's); 0, the reference, applies it from the start
    "at": {"ce_weight": 1.0, "at_weight": 1000.0, "taps": "", "warmup_epochs": 0},
    # CAT-KD's public code (GzyAftermath/CAT-KD, CIFAR-100 VGG13->VGG8 config): beta 4.5, CAMs average-
    # pooled to 2x2, not normalised, every class's map; its base config's alternative is normalize=true
    # with beta 400. class_fraction < 1 keeps the maps of that share of the classes, picked by the
    # teacher's logits ("top" or "bottom" first), as the paper's partial-transfer study.
    "cat": {"ce_weight": 1.0, "cat_weight": 4.5, "resolution": 2, "normalize": False, "class_fraction": 1.0,
            "class_pick": "top"},
    # e2KD's public code (its default criterion): CE 1, KD 1 at T = 1, explanation loss 1 x (1 - cos) of
    # the positive Grad-CAMs (upsampled to the input) for the teacher's top-1 class ("label": true class)
    "xa": {"ce_weight": 1.0, "kd_weight": 1.0, "temperature": 1.0, "xa_weight": 1.0, "target": "teacher",
           "tap": "", "teacher_tap": "", "standardize": False},
}
KD_METHODS: Final = tuple(METHOD_DEFAULTS)
#: bounds of numeric method options beyond "a finite non-negative number": (lowest, highest, lowest allowed?)
#: a zero temperature divides by zero; K negatives and the embedding size allocate memory per batch
OPTION_BOUNDS: Final[dict[str, tuple[float, float, bool]]] = {
    "temperature": (0.0, 1e4, False),
    "num_negatives": (1, 65_536, True),
    "embed_dim": (1, 4096, True),
    "epsilon": (0.0, 1.0, True),
    "momentum": (0.0, 1.0, True),
    "warmup_epochs": (0, 100_000, True),
}
#: what a train request and the demo run when no methods are named: the original seven (``cat`` and
#: ``xa`` are chosen explicitly; ``xa`` costs a double backward per batch)
DEFAULT_METHODS: Final = ("si", "ls", "kd", "dkd", "hints", "crd", "at")
#: the methods that target where the student looks, offered when a student looks elsewhere
WHERE_TO_LOOK_METHODS: Final = ("cat", "xa")
METHOD_TITLES: Final = {
    "si": "independent student (CE)",
    "ls": "label smoothing",
    "kd": "logit matching (Hinton)",
    "dkd": "decoupled KD",
    "hints": "FitNet hints",
    "crd": "contrastive representation distillation",
    "at": "attention transfer",
    "cat": "class activation transfer (CAT-KD)",
    "xa": "explanation alignment (e2KD, Grad-CAM)",
}
#: what ``standardize=true`` brings along unless set explicitly: the values the logit-standardisation
#: paper's public code (sunshangquan/logit-standardization-KD, tools/train.py) sets with the switch.
#: KD: weight 9 at base temperature 2. DKD: alpha x 9 and beta = (alpha x 9) x 9 = 81 as that code
#: computes it (it multiplies the already-scaled alpha), temperature unchanged (it sets the KD
#: temperature, which DKD does not read).
STANDARDIZE_COMPANIONS: Final[dict[str, dict[str, Any]]] = {
    "kd": {"kd_weight": 9.0, "temperature": 2.0},
    "dkd": {"alpha": 9.0, "beta": 81.0},
}

#: the model zoo's architectures (engine.models builds them; a test checks the two agree)
ARCHITECTURES: Final = (
    "vgg8", "vgg11", "vgg13", "vgg16", "vgg19",
    "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "resnet8a", "resnet14a", "resnet20a", "resnet32a", "resnet44a", "resnet56a", "resnet110a",
    "resnet8x4", "resnet32x4", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2",
    "resnet18", "resnet34", "resnet50", "mobilenetv2", "shufflenetv1", "shufflenetv2", "attention_cnn",
)

#: training recipes (engine.train.recipes holds their numbers)
RECIPES: Final = ("paper", "quick", "demo")


#: interpretation bands (DESIGN §6), worst first; the metrics that have them
BAND_NAMES: Final = BANDS
BANDED_METRICS: Final = BANDED
BAND_THRESHOLDS: Final = THRESHOLDS
#: the randomisation check passes when |mean Spearman| between a model's maps and those of a randomised
#: copy is under this: the maps depend on the learned weights (Adebayo et al., 2018)
SANITY_PASS_BELOW: Final = 0.5
#: every per-image teacher-vs-student map metric of an analysis, in table order
MAP_METRICS: Final = ("pearson", "l2_similarity", "iou", "kl", "spearman", "peak_distance")
METRIC_LABELS: Final = {
    "pearson": "Pearson correlation",
    "l2_similarity": "L2 similarity",
    "iou": "IoU (maps > 0.5)",
    "kl": "KL divergence",
    "spearman": "Spearman",
    "peak_distance": "peak distance (px)",
}
METRIC_SHORT: Final = {"pearson": "Pearson", "l2_similarity": "L2 sim", "iou": "IoU", "kl": "KL",
                       "spearman": "Spearman", "peak_distance": "peak px"}

#: who was right, per image (true labels): the splits every pair's metrics are broken down by
OUTCOME_SPLITS: Final = ("both_correct", "teacher_only", "student_only", "both_wrong")
OUTCOME_LABELS: Final = {
    "both_correct": "both correct",
    "teacher_only": "teacher only correct",
    "student_only": "student only correct",
    "both_wrong": "both wrong",
}

#: the packaged experiments of ``kdcam experiment``
EXPERIMENTS: Final = ("color-invariance", "teacher-capacity")

#: what an export may contain
EXPORT_FORMATS: Final = ("html", "png", "csv", "json")

#: the roles a checkpoint can have
ROLES: Final = ("teacher", "student", "imported")


def parse_target(text: str) -> tuple[str, int | None]:
    """``label``/``teacher``/``own`` -> (name, None); ``class:K`` -> ("class", K). One parser for every front-end."""
    text = text.strip()
    if text in ("label", "teacher", "own"):
        return text, None
    name, colon, number = text.partition(":")
    if name == "class" and colon:
        try:
            k = int(number)
        except ValueError:
            raise KdcamError(f"bad target {text!r}: expected class:K with an integer K") from None
        if k < 0:
            raise KdcamError(f"bad target {text!r}: the class index must be non-negative")
        return "class", k
    raise KdcamError(f"unknown target {text!r}; choose from: {', '.join(TARGETS)}")


def canonical_target(text: str) -> str:
    """A target as the analysis job compares it (``' class:01'`` -> ``'class:1'``); parse errors as parse_target's."""
    name, k = parse_target(text)
    return name if k is None else f"class:{k}"


def check_cam_method(name: str) -> str:
    if name not in CAM_METHODS:
        raise KdcamError(f"unknown CAM method {name!r}; choose from: {', '.join(CAM_METHODS)}")
    return name


def check_kd_method(name: str) -> str:
    if name not in METHOD_DEFAULTS:
        raise KdcamError(f"unknown method {name!r}; choose from: {', '.join(KD_METHODS)}")
    return name


def parse_methods(text: str) -> tuple[str, ...]:
    """``kd,dkd`` -> method keys, each checked against the catalogue."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise KdcamError("no methods given; choose from: " + ", ".join(KD_METHODS))
    return tuple(check_kd_method(name) for name in names)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``0,1,2`` -> (0, 1, 2): distinct whole numbers >= 0 (a seed study trains once per seed)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts) or len(set(map(int, parts))) != len(parts):
        raise KdcamError(f"seeds {text!r}: give distinct whole numbers >= 0 separated by commas, e.g. 0,1,2")
    return tuple(int(part) for part in parts)


def default_recipe(dataset: str) -> str:
    """The embedded dataset gets the minutes-on-a-CPU recipe; real datasets the short cosine one.
    The CLI and the TUI's Train form share this default."""
    return "demo" if dataset.split("?")[0].strip() == "shapes" else "quick"


#: short forms of option names in a method label (``kd+std``); other options keep their name
OPTION_TAGS: Final = {"standardize": "std"}
#: a label longer than this names its options by a hash instead (checkpoint names must stay short)
MAX_LABEL_LENGTH: Final = 40


def method_label(method: str, options: Mapping[str, Any] | None = None) -> str:
    """``kd`` with the options that differ from its recipe's: ``kd+std``, ``kd+temperature2``.

    The label names checkpoints (``vgg11-kd+std-shapes-demo-s0``) and the rows of analyses and seed
    studies, so two variants of one method never share a name or a row. Options are sorted by name;
    a switch reads ``+name`` (on) or ``+noname`` (off), a number ``+name<value>``, text ``+name-value``.
    """
    parts = []
    for name in sorted(options or {}):
        value = (options or {})[name]
        tag = OPTION_TAGS.get(name, name)
        if isinstance(value, bool):
            parts.append(tag if value else f"no{tag}")
        elif isinstance(value, (int, float)):
            parts.append(f"{tag}{value:g}")
        else:
            parts.append(f"{tag}-{value}")
    label = "".join(f"+{re.sub(r'[^A-Za-z0-9._-]+', '-', part)}" for part in parts)
    if len(method) + len(label) > MAX_LABEL_LENGTH:
        label = "+opts" + hashlib.sha1(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:6]
    return method + label


def parse_method_options(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``kd.temperature=2`` items -> {"kd": {"temperature": 2.0}}; numbers become floats, text stays text."""
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.strip().partition("=")
        method, dot, name = key.strip().partition(".")
        if not (sep and dot and method and name):
            raise KdcamError(f"option {item!r}: write METHOD.NAME=VALUE, e.g. kd.temperature=2")
        check_kd_method(method)
        value: Any
        try:
            value = float(raw)
        except ValueError:
            value = raw.strip()
        options.setdefault(method, {})[name.strip()] = value
    return options
