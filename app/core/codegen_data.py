"""The data half of an exported script: `load_data()` returning {"train", "val", "test"} -> (x, y).

The image built-ins (Digits, Digits 28x28, MNIST, Fashion-MNIST) are loaded by the script itself,
prepared and split exactly as LayerLab does (the split function below is the same algorithm as
`app/data/splits.py`: stratified by class, largest-remainder shares, seeded). Everything else
(tables, whose encoding is LayerLab's own, the 2-D playground sets and uploads) comes as the
prepared arrays: a file downloaded from LayerLab and put beside the script.
"""

from __future__ import annotations

from app.core.codegen import DataSource, comment_text, docstring_text, literal

SELF_LOADED = ("digits", "digits28", "mnist", "fashion_mnist")

SPLIT_FUNCTION = '''def split_indices(n, labels, validation_fraction, test_fraction, seed):
    """Row numbers of the training, validation and test splits, as LayerLab splits: seeded, and
    stratified (each class in the same proportion in every split; shares by largest remainder)."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    sizes = np.array([len(g) for g in groups], dtype=np.int64)

    def share(total, among):
        if total <= 0 or among.sum() == 0:
            return np.zeros_like(among)
        quotas = among * total / among.sum()
        counts = np.floor(quotas).astype(np.int64)
        order = np.argsort(-(quotas - counts), kind="stable")
        counts[order[:int(total - counts.sum())]] += 1
        return counts

    def size(fraction):
        return 0 if fraction <= 0 or n < 3 else max(1, round(n * fraction))

    n_test = size(test_fraction)
    n_val = min(size(validation_fraction), max(n - n_test - 1, 0))
    test_counts = share(n_test, sizes)
    val_counts = share(n_val, sizes - test_counts)
    parts = {"train": [], "val": [], "test": []}
    for group, n_group_test, n_group_val in zip(groups, test_counts, val_counts):
        shuffled = rng.permutation(group)
        parts["test"].append(shuffled[:n_group_test])
        parts["val"].append(shuffled[n_group_test:n_group_test + n_group_val])
        parts["train"].append(shuffled[n_group_test + n_group_val:])
    return {name: rng.permutation(np.concatenate(chunks)).astype(np.int64) for name, chunks in parts.items()}
'''


def data_functions(data: DataSource) -> list[str]:
    if data.builtin in SELF_LOADED:
        return [SPLIT_FUNCTION, _builtin_loader(data)]
    return [_arrays_loader(data)]


def _builtin_loader(data: DataSource) -> str:
    options = data.options
    fractions = (f"validation_fraction={literal(options['validation_fraction'])}, "
                 f"test_fraction={literal(options['test_fraction'])}, seed={literal(options['split_seed'])}")
    if data.builtin in ("digits", "digits28"):
        lines = ["def load_data():",
                 f'    """{docstring_text(data.title)}: scikit-learn\'s handwritten digits, ink scaled to 0..1."""',
                 "    from sklearn.datasets import load_digits", "",
                 "    digits = load_digits()",
                 "    images = (digits.images / 16.0).astype('float32')"]
        if data.builtin == "digits28":
            lines += ["    from PIL import Image", "",
                      "    # Bilinear resampling of the float image keeps the soft strokes of the original.",
                      "    images = np.stack([np.asarray(Image.fromarray(image).resize((28, 28), "
                      "Image.Resampling.BILINEAR)) for image in images]).clip(0, 1)"]
        lines += ["    x, y = images[..., None], digits.target.astype('int64')",
                  f"    rows = split_indices(len(x), y, {fractions})",
                  "    return {split: (x[rows[split]], y[rows[split]]) for split in ('train', 'val', 'test')}"]
        return "\n".join(lines) + "\n"
    name = data.builtin
    samples = int(data.params.get("train_samples", 60000))
    lines = ["def load_data():",
             f'    """{docstring_text(data.title)}, pixels scaled to 0..1; its own 10,000 test images are the test."""',
             f"    (x, y), (x_test, y_test) = keras.datasets.{name}.load_data()"]
    if samples < 60000:
        lines += [f"    # LayerLab trains on {samples} of the 60,000 training images, always the same ones.",
                  f"    chosen = np.sort(np.random.default_rng(0).permutation(len(x))[:{samples}])",
                  "    x, y = x[chosen], y[chosen]"]
    lines += ["    x, x_test = x[..., None].astype('float32') / 255.0, x_test[..., None].astype('float32') / 255.0",
              "    y, y_test = y.astype('int64'), y_test.astype('int64')",
              f"    rows = split_indices(len(x), y, validation_fraction={literal(options['validation_fraction'])}, "
              f"test_fraction=0.0, seed={literal(options['split_seed'])})",
              "    return {'train': (x[rows['train']], y[rows['train']]), 'val': (x[rows['val']], y[rows['val']]),",
              "            'test': (x_test, y_test)}"]
    return "\n".join(lines) + "\n"


def _arrays_loader(data: DataSource) -> str:
    where = f" ({comment_text(data.arrays_url)})" if data.arrays_url else ""
    lines = ["def load_data():",
             f'    """{docstring_text(data.title)}, as LayerLab prepared and split it."""',
             f"    # Download this dataset's prepared arrays from LayerLab{where}",
             f"    # and save the file as {comment_text(data.arrays_file)} in the same folder.",
             f"    with np.load(HERE / {literal(data.arrays_file)}) as arrays:",
             "        return {split: (arrays[f'x_{split}'], arrays[f'y_{split}'])",
             "                for split in ('train', 'val', 'test')}"]
    return "\n".join(lines) + "\n"
