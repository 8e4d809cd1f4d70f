"""The exported script as text: valid Python, chains as Sequential and branches as functional code,
and user-given names that never become code."""

from __future__ import annotations

import ast
import json

import pytest

from app.core.codegen import DataSource, is_chain, model_script, run_script
from app.core.graph import add_layer
from app.core.notebook import notebook
from app.core.starters import STARTERS
from app.core.training import TrainConfig
from tests.factories import stack

HOSTILE = ['x"); import os; os.system("touch /tmp/pwned")  #', "line\nbreak\r\u2028import os", "'''\"\"\"\\",
           "{{7*7}} <script>"]
DIGITS = DataSource(title="Digits (8x8)", task="classification", num_classes=10, input_shape=[8, 8, 1],
                    train_samples=1257, builtin="digits",
                    options={"validation_fraction": 0.15, "test_fraction": 0.15, "split_seed": 0})
TABLE = DataSource(title='My "table"\nimport os', task="regression", num_classes=0, input_shape=[5],
                   train_samples=100, arrays_file="my_table.npz", arrays_url="/api/v1/datasets/3/arrays.npz")


def branching():
    graph = stack(("Input", {"shape": [16]}), ("Dense", {"units": 16}))
    graph, side = add_layer(graph, "Dense", {"units": 16, "activation": "tanh"}, inputs=["n1"])
    graph, _ = add_layer(graph, "Concatenate", inputs=["n2", side])
    graph, _ = add_layer(graph, "Dense", {"units": 3, "activation": "softmax"})
    return graph


def top_level(code: str) -> list[str]:
    """What the module does when imported: only imports, constants and definitions, and the main guard."""
    kinds = []
    for statement in ast.parse(code).body:
        if isinstance(statement, (ast.Import, ast.ImportFrom, ast.FunctionDef)):
            kinds.append(type(statement).__name__)
        elif isinstance(statement, ast.Assign):
            assert all(isinstance(t, ast.Name) and t.id.isupper() for t in statement.targets)
            kinds.append("Assign")
        elif isinstance(statement, ast.If):
            assert ast.unparse(statement.test) == "__name__ == '__main__'"
            assert ast.unparse(statement.body[0]) == "main()" and len(statement.body) == 1
            kinds.append("If")
        else:
            raise AssertionError(f"unexpected top-level statement: {ast.unparse(statement)}")
    return kinds


@pytest.mark.parametrize("key", list(STARTERS))
def test_every_starter_exports_as_a_sequential_script_or_in_functional_style_with_a_skip(key):
    graph = STARTERS[key].graph()
    code = model_script(graph, STARTERS[key].title).as_python()
    assert top_level(code)[-1] == "If"
    assert "layerlab" not in code.lower().replace("exported from layerlab", "")
    if len(graph.nodes) > 1:
        assert ("keras.Sequential([" in code) == is_chain(graph)
    if key == "residual":  # the skip connection: the block's input is added to its output
        assert "layers.Add(name='add')([max_pooling2d, conv2d_2])" in code


def test_a_branching_model_is_written_in_functional_style():
    code = model_script(branching(), "Two paths").as_python()
    assert "keras.Sequential" not in code
    assert "layers.Concatenate(name='concatenate')([dense, dense_1])" in code
    assert "return keras.Model(inputs=input, outputs=dense_2, name='two_paths')" in code


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_strings(name):
    graph = STARTERS["dense"].graph()
    graph.nodes[2].name = name  # past the editor's own name check, as an imported model might try
    data = DataSource(**{**TABLE.__dict__, "title": name, "arrays_file": "data.npz"})
    for code in (model_script(graph, name).as_python(),
                 run_script(graph, name, data, TrainConfig(seed=3), name).as_python(),
                 run_script(graph, name, DIGITS, TrainConfig(), name).as_python()):
        top_level(code)  # parses, and nothing but definitions runs at import
        strings = [n.value for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Constant)]
        assert name in strings  # the layer's name arrives intact, as a string
        assert "os" not in {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}


def test_a_run_script_has_the_runs_settings():
    config = TrainConfig(loss="categorical_crossentropy", optimizer="sgd", momentum=0.9, learning_rate=0.05,
                         epochs=7, batch_size=16, seed=5, early_stopping=True, class_weight="balanced",
                         metrics=["accuracy"])
    code = run_script(STARTERS["dense"].graph(), "Dense", DIGITS, config, "run 4").as_python()
    for expected in ("SEED = 5", "EPOCHS = 7", "BATCH_SIZE = 16", "keras.utils.set_random_seed(SEED)",
                     "keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)",
                     "keras.losses.CategoricalCrossentropy()", "keras.utils.to_categorical(y, 10)",
                     "keras.callbacks.EarlyStopping(", "class_weight=class_weight",
                     "rows = split_indices(len(x), y, validation_fraction=0.15, test_fraction=0.15, seed=0)"):
        assert expected in code, expected
    regression = run_script(STARTERS["regression"].graph(), "Reg", TABLE, TrainConfig(loss="huber", metrics=["mae"],
                                                                                    seed=None), "run 1").as_python()
    assert "np.load(HERE / 'my_table.npz')" in regression and "set_random_seed" not in regression
    assert "# Download this dataset's prepared arrays from LayerLab (/api/v1/datasets/3/arrays.npz)" in regression


def test_the_notebook_has_the_scripts_parts_as_cells():
    script = run_script(STARTERS["dense"].graph(), "Dense", DIGITS, TrainConfig(seed=1), "run 2")
    document = json.loads(notebook(script))
    assert document["nbformat"] == 4
    sources = ["".join(cell["source"]) for cell in document["cells"]]
    assert document["cells"][0]["cell_type"] == "markdown"
    assert "HERE = Path.cwd()" in sources[1] and "__file__" not in "".join(sources)
    assert any(s.startswith("def build_model():") for s in sources)
    for source in sources[1:]:
        ast.parse(source)


def test_a_run_script_adapts_its_normalization_layers_to_the_training_split():
    graph = stack(("Input", {"shape": [8]}), ("Normalization", {}), ("Dense", {"units": 1, "activation": "linear"}))
    script = run_script(graph, "Norm", TABLE, TrainConfig(loss="mean_squared_error", metrics=["mae"]), "run 3")
    code = script.as_python()
    assert "for name in ('normalization',):" in code and "layer.adapt(" in code
    assert code.index("layer.adapt(") < code.index("return model.fit(")


def test_an_autoencoders_run_script_learns_to_give_back_its_input():
    config = TrainConfig(target="input", loss="mean_squared_error", metrics=["mae"])
    code = run_script(STARTERS["autoencoder"].graph(), "Auto", DIGITS, config, "run 5").as_python()
    assert "    y = x.astype('float32')  # target input: the model learns to give back each sample" in code
    assert "layers.Conv2DTranspose(filters=8, kernel_size=(3, 3), strides=(2, 2), padding='same'" in code
    ast.parse(code)
