"""A model, or a run, as the Keras 3 script a teacher would write by hand.

The script defines `build_model()` (the uncompiled network: Sequential where the graph is a
chain, functional where it branches), `load_data()`, `train(model, data)` and `main()`, and runs
`main()` under `if __name__ == "__main__":`, so that it can be imported and its model checked.
It imports Keras, TensorFlow's data pipeline and NumPy, never LayerLab.

User-given names and values enter the code only as Python literals made by `repr` (a name with
quotes, newlines or code in it stays a string), and in comments only after every line break has
been removed. The training code mirrors the worker (`app/worker/train.py`): the same seed, the
same shuffling pipeline, loss, metrics and callbacks, so a run's script reproduces its curves.
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Any

from app.core.catalog import CATALOG
from app.core.graph import Graph, Node
from app.core.keras_args import KerasLayer, call_inputs, keras_kwargs, keras_layer
from app.core.training import TrainConfig, output_head, uses_logits

# Keras' own defaults: a parameter at its default is left out of the call, as a person would.
KERAS_DEFAULTS: dict[str, Any] = {"use_bias": True, "kernel_initializer": "glorot_uniform", "padding": "valid",
                                  "momentum": 0.99, "epsilon": 0.001, "offset": 0.0, "axis": -1,
                                  "return_sequences": False, "dropout": 0.0, "strides": None, "trainable": True,
                                  "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None,
                                  "bias_constraint": None, "value_dim": None}
UNIT_STRIDES = (1, (1, 1))
SCRIPT_FOLDER = "Path(__file__).resolve().parent  # this script's folder"
NOTEBOOK_FOLDER = "Path.cwd()  # the notebook's folder"
SHUFFLE_BUFFER_BYTES = 256 * 2**20  # as the worker: past this, the shuffle buffer is capped
OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad", "nadam": "Nadam",
              "sgd": "SGD"}
LOSSES = {"sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
          "categorical_crossentropy": "CategoricalCrossentropy", "binary_crossentropy": "BinaryCrossentropy",
          "mean_squared_error": "MeanSquaredError", "mean_absolute_error": "MeanAbsoluteError", "huber": "Huber"}


@dataclass
class DataSource:
    """Where the script gets its data: a built-in it loads itself, or the prepared arrays as a file."""

    title: str
    task: str                                # classification or regression
    num_classes: int
    input_shape: list[int]
    train_samples: int
    builtin: str | None = None               # digits, digits28, mnist, fashion_mnist: loaded by the script
    params: dict[str, Any] = field(default_factory=dict)   # the built-in's parameters (train_samples)
    options: dict[str, Any] = field(default_factory=dict)  # split: validation_fraction, test_fraction, split_seed
    arrays_file: str = "data.npz"            # otherwise: the prepared arrays, downloaded beside the script
    arrays_url: str = ""


@dataclass
class Script:
    """The script's parts; the notebook is made of the same parts."""

    title: str
    header: list[str]       # comment lines
    imports: str
    constants: str
    functions: list[str]    # build_model, data helpers, train
    main_body: list[str]    # what main() does, one statement per line

    def as_python(self) -> str:
        main = "def main():\n" + "".join(f"    {line}\n" if line else "\n" for line in self.main_body)
        parts = [self.imports, self.constants, *self.functions, main, 'if __name__ == "__main__":\n    main()\n']
        body = "\n\n\n".join(part.rstrip("\n") for part in parts if part)
        return "\n".join(self.header) + "\n\n" + body + "\n"


def comment_text(text: str) -> str:
    """User text made safe for a comment: one line, whatever line breaks or separators it had."""
    return " ".join(str(text).split())[:200]


def docstring_text(text: str) -> str:
    """User text made safe inside a triple-quoted docstring: one line, no quotes or backslashes."""
    return comment_text(text).replace("\\", "/").replace('"', "'")


def literal(value: Any) -> str:
    """A Python literal for a value from the catalog or the user (never code)."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, (list, tuple)):
        items = ", ".join(literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    raise TypeError(f"no literal for {type(value).__name__}")


def slug(name: str, fallback: str = "model") -> str:
    """A file and model name: letters, digits and underscores."""
    text = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower()
    return text[:60] or fallback


def layer_call(node: Node) -> str:
    """`layers.Dense(units=64, activation='relu', name='dense')`: parameters at Keras' defaults left out."""
    return _constructor(keras_layer(node), node.name)


def _constructor(spec: KerasLayer, name: str | None = None) -> str:
    args = [_constructor(spec.wrapped)] if spec.wrapped else []
    for key, value in spec.kwargs.items():
        if key in KERAS_DEFAULTS and value == KERAS_DEFAULTS[key]:
            continue
        if key == "strides" and value in UNIT_STRIDES:
            continue
        if isinstance(value, dict):  # a regularizer with its own factor
            settings = ", ".join(f"{name}={literal(v)}" for name, v in value["config"].items())
            args.append(f"{key}=keras.regularizers.{value['class_name']}({settings})")
            continue
        args.append(f"{key}={literal(value)}")
    if name is not None:
        args.append(f"name={literal(name)}")
    return f"layers.{spec.class_name}({', '.join(args)})"


def is_chain(graph: Graph) -> bool:
    order = graph.topological_order()
    inputs = [n for n in order if CATALOG[n.type].is_input]
    return (len(inputs) == 1 and order[0] is inputs[0] and len(graph.outputs()) == 1
            and all(n.inputs == [order[i].id] for i, n in enumerate(order[1:]))
            and not any(CATALOG[n.type].takes_several for n in order))  # Sequential calls with one argument


def build_model_code(graph: Graph, model_name: str) -> str:
    order = graph.topological_order()
    name = literal(slug(model_name))
    lines = ["def build_model():", '    """The network, not yet compiled."""']
    if not order:
        return "\n".join([*lines, "    raise ValueError('This model has no layers yet.')"]) + "\n"
    refrozen = [n for n in order if CATALOG[n.type].freezes_once_built and keras_kwargs(n).get("trainable") is False]
    start = "model = " if refrozen else "return "
    if is_chain(graph):
        shape = keras_kwargs(order[0])["shape"]
        lines.append(f"    {start}keras.Sequential([")
        lines.append(f"        keras.Input(shape={literal(shape)}, name={literal(order[0].name)}),")
        lines += [f"        {layer_call(node)}," for node in order[1:]]
        lines.append(f"    ], name={name})")
        return "\n".join(lines + _refreeze_lines(refrozen)) + "\n"
    variables = _variable_names(order)
    inputs = [n for n in order if CATALOG[n.type].is_input]
    for node in order:
        if CATALOG[node.type].is_input:
            shape = keras_kwargs(node)["shape"]
            lines.append(f"    {variables[node.id]} = keras.Input(shape={literal(shape)}, name={literal(node.name)})")
        else:
            arguments = call_inputs(node.type, [variables[i] for i in node.inputs])
            written = ", ".join(f"[{', '.join(a)}]" if isinstance(a, list) else a for a in arguments)
            lines.append(f"    {variables[node.id]} = {layer_call(node)}({written})")
    outputs = [variables[n.id] for n in graph.outputs()]
    model_inputs = variables[inputs[0].id] if len(inputs) == 1 else f"[{', '.join(variables[n.id] for n in inputs)}]"
    model_outputs = outputs[0] if len(outputs) == 1 else f"[{', '.join(outputs)}]"
    lines.append(f"    {start}keras.Model(inputs={model_inputs}, outputs={model_outputs}, name={name})")
    return "\n".join(lines + _refreeze_lines(refrozen)) + "\n"


def _refreeze_lines(frozen: list[Node]) -> list[str]:
    """Freezing again, weight by weight, the layers whose inner weights ignore `trainable=False` (see
    `LayerType.freezes_once_built`)."""
    if not frozen:
        return []
    names = ", ".join(literal(n.name) for n in frozen)
    return [f"    for name in ({names},):  # their inner layers' weights do not follow trainable=False",
            "        for weight in model.get_layer(name).weights:",
            "            weight.trainable = False",
            "    return model"]


def _variable_names(order: list[Node]) -> dict[str, str]:
    """A Python name per layer output, from the layer's name when it is one ("conv2d"), else x1, x2..."""
    names: dict[str, str] = {}
    taken = {"keras", "layers", "np", "tf", "inputs", "model"}
    for index, node in enumerate(order, start=1):
        candidate = re.sub(r"\W", "_", node.name.lower())
        if not candidate.isidentifier() or keyword.iskeyword(candidate) or candidate in taken:
            candidate = f"x{index}"
        names[node.id] = candidate
        taken.add(candidate)
    return names


def model_script(graph: Graph, model_name: str) -> Script:
    """A model alone: `build_model()`, and a main() that shows its summary."""
    header = [f"# {comment_text(model_name)}: a Keras 3 model exported from LayerLab.",
              "# build_model() returns the network; running this file prints its summary.",
              "# Needs: pip install keras tensorflow"]
    return Script(model_name, header, "import keras\nfrom keras import layers\n", "",
                  [build_model_code(graph, model_name)], ["model = build_model()", "model.summary()", "return model"])


def run_script(graph: Graph, model_name: str, data: DataSource, config: TrainConfig, run_label: str) -> Script:
    """A run: its model, its data (same preparation and split), its settings; trains, tests and saves."""
    from app.core.codegen_data import data_functions  # the data half, kept in its own module

    logits = _logits(graph, config)
    header = [f"# {comment_text(model_name)}, {comment_text(run_label)}: exported from LayerLab as plain Keras 3.",
              f"# Data: {comment_text(data.title)}. Settings: {config.loss}, {config.optimizer} "
              f"(learning rate {config.learning_rate:g}), {config.epochs} epochs of batches of {config.batch_size}.",
              "# Needs: pip install keras tensorflow numpy" + (" scikit-learn pillow" if data.builtin else "")]
    imports = ("from pathlib import Path\n\nimport keras\nimport numpy as np\nimport tensorflow as tf\n"
               "from keras import layers\n")
    constants = "\n".join([f"SEED = {literal(config.seed)}", f"EPOCHS = {config.epochs}",
                           f"BATCH_SIZE = {config.batch_size}",
                           f"HERE = {SCRIPT_FOLDER}",
                           f"MODEL_FILE = HERE / {literal(slug(model_name) + '.keras')}"]) + "\n"
    functions = [build_model_code(graph, model_name), *data_functions(data),
                 _train_code(config, data, logits, [n.name for n in graph.topological_order()
                                                    if n.type == "Normalization"])]
    body = ["data = load_data()", "model = build_model()", "model.summary()", "history = train(model, data)",
            "x_test, y_test = data['test']",
            "scores = model.evaluate(prepare_targets_dataset(x_test, y_test), return_dict=True, verbose=0)",
            "print('Test:', {name: round(value, 4) for name, value in scores.items()})",
            "model.save(MODEL_FILE)", "print('Saved', MODEL_FILE)", "return history"]
    if config.seed is not None:
        body.insert(0, "keras.utils.set_random_seed(SEED)  # the same initial weights and batches as in LayerLab")
    return Script(f"{model_name} · {run_label}", header, imports, constants, functions, body)


def _logits(graph: Graph, config: TrainConfig) -> bool:
    head = output_head(graph)
    return uses_logits(config.loss, head.activation if head else "")


def _train_code(config: TrainConfig, data: DataSource, logits: bool, normalized: list[str]) -> str:
    optimizer = f"keras.optimizers.{OPTIMIZERS[config.optimizer]}(learning_rate={literal(config.learning_rate)}" + (
        f", momentum={literal(config.momentum)})" if config.optimizer == "sgd" else ")")
    loss_args = "from_logits=True" if logits else ""
    loss = f"keras.losses.{LOSSES[config.loss]}({loss_args})"
    metrics = ", ".join(_metric(name, config, logits) for name in config.metrics)
    sample_bytes = 4 * math.prod(data.input_shape or [1])
    buffer = min(data.train_samples, max(1024, SHUFFLE_BUFFER_BYTES // max(1, sample_bytes)))
    shuffle_size = "len(x)" if buffer >= data.train_samples else f"min(len(x), {buffer})"
    seed = "SEED" if config.seed is not None else "None"
    lines = [
        "def prepare_targets_dataset(x, y, shuffle=False):",
        '    """Batches of (features, targets), the targets in the form the loss expects."""',
        *_target_lines(config, data),
        "    batches = tf.data.Dataset.from_tensor_slices((x, y))",
        "    if shuffle:",
        f"        batches = batches.shuffle({shuffle_size}, seed={seed}, reshuffle_each_iteration=True)",
        "    return batches.batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)",
        "",
        "",
        "def train(model, data):",
        '    """Compile and fit with the settings of the run; returns the history of each epoch."""',
        "    model.compile(",
        f"        optimizer={optimizer},",
        f"        loss={loss},",
        f"        metrics=[{metrics}],",
    ]
    if config.steps_per_execution != 1:
        lines.append(f"        steps_per_execution={config.steps_per_execution},")
    lines += ["    )", "    x_train, y_train = data['train']", "    x_val, y_val = data['val']"]
    if normalized:
        lines += [f"    for name in {literal(normalized)}:  # Normalization measures the training split first",
                  "        layer = model.get_layer(name)",
                  "        layer.adapt(keras.Model(model.inputs[0], layer.input).predict(x_train, verbose=0))"]
    callbacks = "[]"
    if config.early_stopping:
        lines += ["    stop_early = keras.callbacks.EarlyStopping(",
                  f"        monitor={literal(config.early_stopping_monitor)}, "
                  f"patience={config.early_stopping_patience}, restore_best_weights={config.restore_best_weights})"]
        callbacks = "[stop_early]"
    weights = ""
    if config.class_weight == "balanced" and data.task == "classification":
        lines += [f"    counts = np.bincount(y_train.astype('int64'), minlength={data.num_classes})",
                  "    # 'balanced': each class weighs as much in total (n_samples / (n_classes * class count))",
                  "    class_weight = {i: (len(y_train) / (len(counts) * int(c)) if c else 1.0) "
                  "for i, c in enumerate(counts)}"]
        weights = ", class_weight=class_weight"
    validation = "prepare_targets_dataset(x_val, y_val) if len(x_val) else None"
    lines += ["    return model.fit(",
              "        prepare_targets_dataset(x_train, y_train, shuffle=True),",
              f"        validation_data={validation},",
              f"        epochs=EPOCHS, callbacks={callbacks}{weights},", "    )"]
    return "\n".join(lines) + "\n"


def _target_lines(config: TrainConfig, data: DataSource) -> list[str]:
    if config.target == "input":
        return ["    y = x.astype('float32')  # target input: the model learns to give back each sample"]
    if data.task != "classification":
        return ["    y = y.astype('float32').reshape(len(y), -1)"]
    if config.loss == "categorical_crossentropy":
        return [f"    y = keras.utils.to_categorical(y, {data.num_classes}).astype('float32')"]
    if config.loss == "binary_crossentropy" or config.loss in ("mean_squared_error", "mean_absolute_error", "huber"):
        return ["    y = y.astype('float32').reshape(-1, 1)"]
    return ["    y = y.astype('int64')"]


def _metric(name: str, config: TrainConfig, logits: bool) -> str:
    if name == "accuracy":
        if config.loss == "sparse_categorical_crossentropy":
            return "keras.metrics.SparseCategoricalAccuracy(name='accuracy')"
        if config.loss == "categorical_crossentropy":
            return "keras.metrics.CategoricalAccuracy(name='accuracy')"
        return f"keras.metrics.BinaryAccuracy(name='accuracy', threshold={0.0 if logits else 0.5})"
    return {"mae": "keras.metrics.MeanAbsoluteError(name='mae')", "mse": "keras.metrics.MeanSquaredError(name='mse')",
            "rmse": "keras.metrics.RootMeanSquaredError(name='rmse')"}[name]
