"""The dataset catalog: every built-in dataset, its parameters, and the limits on uploads.

Pure Python (no numpy): the web process imports this to draw the dataset picker and to
validate a request before any worker is asked to load anything. Parameters are declared
with the layer catalog's `Param`, so forms, bounds and error wording work the same way
for datasets as for layers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from app.core.catalog import Param, coerce_param
from app.core.errors import MAX_SHOWN_CHARS, TooLarge, UserError, invalid_value, shown

MNIST_CLASS_NAMES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class DatasetSpec:
    """One built-in dataset as a learner sees it in the picker."""

    key: str
    title: str
    description: str
    kind: str
    task: str
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] = ()      # empty for regression
    num_samples: int | None = None         # None: set by the n_samples parameter
    source: str = ""
    params: tuple[Param, ...] = ()
    needs_download: bool = False           # cached by the Docker image, else fetched once
    by_name: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.params})

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "title": self.title, "description": self.description,
            "kind": self.kind, "task": self.task, "input_shape": list(self.input_shape),
            "class_names": list(self.class_names), "num_samples": self.num_samples,
            "source": self.source, "needs_download": self.needs_download,
            "params": [p.as_dict() for p in self.params],
        }


def _seed(name: str, help_text: str) -> Param:
    return Param(name, "int", 0, help_text, minimum=0, maximum=MAX_SEED)


# Parameters of the generated 2-D sets, shared so that one fact lives in one place.
_GENERATED_PARAMS = (
    Param("n_samples", "int", 500, "How many points to generate.", minimum=50, maximum=5000),
    Param("noise", "float", 0.1,
          "How much the points are jittered across the ideal boundary; 0 is perfectly clean.",
          minimum=0.0, maximum=0.5),
    _seed("seed", "The random seed: the same seed always draws the same points."),
)
_KERAS_IMAGE_PARAMS = (
    Param("train_samples", "int", 60000,
          "How many of the 60000 training images to use; fewer train faster on a CPU.",
          minimum=100, maximum=60000),
)


# The generated sequence set (drawn by `app.data.sequences`).
SEQUENCE_LENGTH = 20
VOCABULARY = 10           # token ids 1..9; 0 is left for padding, as Embedding layers usually expect
MOTIF = (3, 1, 4)
_SEQUENCE_PARAMS = (
    Param("n_samples", "int", 2000, "How many sequences to generate; half hold the motif.", minimum=100,
          maximum=20000),
    _seed("seed", "The random seed: the same seed always draws the same sequences."),
)


def _points(key: str, title: str, description: str, task: str, class_names: tuple[str, ...] = ()) -> DatasetSpec:
    return DatasetSpec(key, title, description, "points2d", task, (2,), class_names,
                       source="generated", params=_GENERATED_PARAMS)


BUILTIN_DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec("digits", "Digits (8x8)",
                "1,797 tiny handwritten digits, 8x8 pixels: small enough to train in seconds.",
                "image", "classification", (8, 8, 1), MNIST_CLASS_NAMES, 1797, "scikit-learn"),
    DatasetSpec("digits28", "Digits (upscaled to 28x28)",
                "The same 1,797 digits enlarged to 28x28, so models built for MNIST run on them unchanged.",
                "image", "classification", (28, 28, 1), MNIST_CLASS_NAMES, 1797, "scikit-learn"),
    DatasetSpec("mnist", "MNIST",
                "70,000 handwritten digits, 28x28 grayscale: the classic first image dataset.",
                "image", "classification", (28, 28, 1), MNIST_CLASS_NAMES, 70000, "keras",
                _KERAS_IMAGE_PARAMS, needs_download=True),
    DatasetSpec("fashion_mnist", "Fashion-MNIST",
                "70,000 photos of clothing in 10 kinds, 28x28 grayscale: harder than digits.",
                "image", "classification", (28, 28, 1), FASHION_MNIST_CLASS_NAMES, 70000, "keras",
                _KERAS_IMAGE_PARAMS, needs_download=True),
    DatasetSpec("iris", "Iris flowers",
                "150 flowers measured in 4 numbers; tell the 3 species apart.",
                "table", "classification", (4,), ("setosa", "versicolor", "virginica"), 150, "scikit-learn"),
    DatasetSpec("wine", "Wine",
                "178 wines analysed in 13 chemical measurements; find which of 3 growers made each.",
                "table", "classification", (13,), ("class_0", "class_1", "class_2"), 178, "scikit-learn"),
    DatasetSpec("breast_cancer", "Breast cancer",
                "569 tumour scans described by 30 measurements; predict malignant or benign.",
                "table", "classification", (30,), ("malignant", "benign"), 569, "scikit-learn"),
    DatasetSpec("diabetes", "Diabetes progression",
                "442 patients described by 10 numbers; predict how far the disease progresses in a year.",
                "table", "regression", (10,), (), 442, "scikit-learn"),
    _points("circle", "Circle", "Points inside a circle versus a ring around it: no straight line "
            "separates them.", "classification", ("outside", "inside")),
    _points("xor", "Exclusive or", "Points labelled by whether x and y have the same sign: the problem "
            "a single neuron cannot solve.", "classification", ("opposite signs", "same signs")),
    _points("gaussian", "Two blobs", "Two clouds of points, one per class; more noise makes them overlap.",
            "classification", ("lower left", "upper right")),
    _points("spiral", "Spiral", "Two interleaved spirals: the hardest of the playground sets.",
            "classification", ("spiral A", "spiral B")),
    _points("plane", "Plane", "A value that rises steadily from one corner to the other: regression's "
            "simplest case.", "regression"),
    _points("multi_gaussian", "Six bumps", "A value made of six positive and negative bumps: a bumpy "
            "surface to fit.", "regression"),
    DatasetSpec("motif", "Hidden motif",
                f"Sequences of {SEQUENCE_LENGTH} tokens (ids 1 to {VOCABULARY - 1}); half hold the motif "
                f"{'-'.join(map(str, MOTIF))} somewhere in a row. The others hold the same tokens in other orders, "
                "so only a model that reads the order (a GRU, an LSTM or a Conv1D) finds the motif.",
                "sequence", "classification", (SEQUENCE_LENGTH,),
                ("no motif", "motif " + "-".join(map(str, MOTIF))), source="generated", params=_SEQUENCE_PARAMS),
)
DATASETS: dict[str, DatasetSpec] = {spec.key: spec for spec in BUILTIN_DATASETS}


# Options applied when any dataset, built-in or uploaded, is split for training.
SPLIT_OPTIONS: tuple[Param, ...] = (
    Param("validation_fraction", "float", 0.15,
          "The share of samples held out to watch for overfitting while training.",
          minimum=0.05, maximum=0.5),
    Param("test_fraction", "float", 0.15,
          "The share of samples kept aside for the final test; ignored when the data has its own test set.",
          minimum=0.05, maximum=0.5),
    _seed("split_seed", "The random seed of the split: the same seed always gives the same split."),
)
TASK_OPTION = Param("task", "choice", "auto",
                    "What to predict: auto decides from the target (text or few whole numbers: "
                    "classification; other numbers: regression).",
                    choices=("auto", "classification", "regression"))
IMAGE_OPTIONS: tuple[Param, ...] = (
    Param("image_size", "pair", [28, 28], "Every image is resized to this (height, width).",
          minimum=4, maximum=256),
    Param("color_mode", "choice", "grayscale", "grayscale gives 1 channel, rgb gives 3.",
          choices=("grayscale", "rgb")),
)
COLUMN_TREATMENTS = ("numeric", "categorical", "ignore")
UPLOAD_KINDS: dict[str, tuple[Param, ...]] = {
    "csv": (TASK_OPTION,),
    "npz": (TASK_OPTION,),
    "images": IMAGE_OPTIONS,
}
# Free-form options that no Param kind describes; checked here for type, and against the
# file's columns once it is read.
_TEXT_OPTIONS = {"name": 120, "target": 200}


@dataclass(frozen=True)
class UploadLimits:
    """How much an upload may hold; each limit is checked before the memory it guards is used."""

    max_bytes: int = 50 * 1024 * 1024
    max_csv_rows: int = 200_000
    max_columns: int = 500
    max_classes: int = 1000
    max_categories: int = 100            # distinct values a text feature may have to be one-hot encoded
    max_prepared_values: int = 50_000_000  # samples x values per sample after encoding (200 MB of float32)
    max_zip_entries: int = 20_000
    max_total_uncompressed: int = 500 * 1024 * 1024
    max_compression_ratio: int = 100
    max_image_pixels: int = 4096 * 4096
    max_npz_elements: int = 200_000_000

    def check_upload_size(self, size: int) -> None:
        """Refuse a file larger than `max_bytes`; the web layer checks the same while receiving it."""
        if size > self.max_bytes:
            raise TooLarge(f"The file is {_megabytes(size)}; an upload may be at most "
                           f"{_megabytes(self.max_bytes)}.", field="file")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def get_dataset(key: str) -> DatasetSpec:
    try:
        return DATASETS[key]
    except (KeyError, TypeError):
        raise UserError(f"Unknown dataset {shown(key)}. Expected one of: {', '.join(DATASETS)}.",
                        field="dataset") from None


def _coerce_all(owner: str, params: tuple[Param, ...], values: dict[str, Any] | None,
                extra: tuple[str, ...] = ()) -> dict[str, Any]:
    values = dict(values or {})
    by_name = {p.name: p for p in params}
    unknown = [name for name in values if name not in by_name and name not in extra]
    if unknown:
        allowed = ", ".join([*by_name, *extra]) or "none"
        raise UserError(f"{owner} has no parameter `{str(unknown[0])[:MAX_SHOWN_CHARS]}`. "
                        f"Its parameters are: {allowed}.", field=str(unknown[0]))
    return {param.name: coerce_param(param, values.get(param.name, param.default)) for param in params}


def validate_dataset_params(key: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the dataset's parameters with defaults filled in, or raise UserError."""
    spec = get_dataset(key)
    return _coerce_all(f"Dataset {key!r}", spec.params, params)


def validate_split_options(options: dict[str, Any] | None) -> dict[str, Any]:
    normalized = _coerce_all("Dataset preparation", SPLIT_OPTIONS, options)
    total = normalized["validation_fraction"] + normalized["test_fraction"]
    if total > 0.8:
        raise invalid_value("test_fraction", "validation_fraction + test_fraction to leave at least 20% for "
                            "training", None, received_text=f"{normalized['test_fraction']:g} (with "
                            f"validation_fraction={normalized['validation_fraction']:g})")
    return normalized


def validate_upload_options(kind: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Normalize the options of an upload of `kind` ("csv", "npz" or "images")."""
    if kind not in UPLOAD_KINDS:
        raise invalid_value("kind", "one of " + ", ".join(UPLOAD_KINDS), kind)
    options = dict(options or {})
    split_names = tuple(p.name for p in SPLIT_OPTIONS)
    text_names = ("name", "target") if kind == "csv" else ("name",)
    free_names = text_names + (("column_types",) if kind == "csv" else ())
    own = {k: v for k, v in options.items() if k not in split_names and k not in free_names}
    normalized = _coerce_all(f"A {kind} upload", UPLOAD_KINDS[kind], own, extra=split_names + free_names)
    normalized.update(validate_split_options({k: v for k, v in options.items() if k in split_names}))
    for name in text_names:
        max_length = _TEXT_OPTIONS[name]
        value = options.get(name) or ""
        if not isinstance(value, str) or len(value) > max_length:
            raise invalid_value(name, f"text of at most {max_length} characters", value)
        normalized[name] = value.strip()
    if kind == "csv":
        normalized["column_types"] = _column_types(options.get("column_types"))
    return normalized


def _column_types(value: Any) -> dict[str, str]:
    if value is None or value == {}:
        return {}
    allowed = "a mapping of column name to " + " / ".join(COLUMN_TREATMENTS)
    if not isinstance(value, dict) or len(value) > UploadLimits.max_columns:
        raise invalid_value("column_types", allowed, value)
    for column, treatment in value.items():
        if not isinstance(column, str) or treatment not in COLUMN_TREATMENTS:
            raise invalid_value("column_types", allowed, None,
                                received_text=f"{{{shown(column)}: {shown(treatment)}}}")
    return dict(value)


def catalog_as_dict() -> dict[str, Any]:
    """Everything a client needs to offer datasets and uploads, as JSON-ready data."""
    return {
        "datasets": [spec.as_dict() for spec in BUILTIN_DATASETS],
        "split_options": [p.as_dict() for p in SPLIT_OPTIONS],
        "upload_kinds": {kind: [p.as_dict() for p in params] for kind, params in UPLOAD_KINDS.items()},
        "column_treatments": list(COLUMN_TREATMENTS),
        "upload_limits": asdict(UploadLimits()),
    }
