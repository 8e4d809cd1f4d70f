"""The generated sequence set: deterministic per seed, balanced, and labelled by the motif alone (the tokens of
the motif occur in every sequence, so only their order tells the classes apart)."""

import numpy as np

from app.data.catalog import DATASETS, MOTIF, SEQUENCE_LENGTH, VOCABULARY
from app.data.sequences import contains_motif, motif_sequences
from tests.data.test_builtin import check_prepared_builtin


def test_same_seed_same_sequences_other_seed_others():
    x, y = motif_sequences(300, seed=5)
    again, _ = motif_sequences(300, seed=5)
    other, _ = motif_sequences(300, seed=6)
    np.testing.assert_array_equal(x, again)
    assert not np.array_equal(x, other)
    assert x.shape == (300, SEQUENCE_LENGTH) and x.dtype == np.int64
    assert x.min() >= 1 and x.max() <= VOCABULARY - 1
    assert np.bincount(y).tolist() == [150, 150]


def test_the_label_says_whether_the_motif_occurs_and_every_sequence_holds_its_tokens():
    x, y = motif_sequences(1000, seed=0)
    assert [contains_motif(s) for s in x] == [bool(label) for label in y]
    assert all(set(MOTIF) <= set(s.tolist()) for s in x)


def test_contains_motif_only_counts_the_tokens_in_a_row():
    assert contains_motif(np.array([9, *MOTIF, 9]))
    assert not contains_motif(np.array([MOTIF[0], 9, *MOTIF[1:]]))
    assert not contains_motif(np.array(list(reversed(MOTIF))))


def test_the_motif_set_prepares_as_a_sequence_set_with_its_tokens_previewed(tmp_path):
    meta, arrays = check_prepared_builtin("motif", tmp_path, {"n_samples": 400, "seed": 2})
    assert meta.kind == "sequence" and sum(meta.split_sizes.values()) == 400
    assert meta.preview["header"] == [*(f"step {i + 1}" for i in range(SEQUENCE_LENGTH)), "motif"]
    assert len(meta.preview["rows"]) == 10
    assert meta.preview["rows"][0][-1] in DATASETS["motif"].class_names
    tokens = arrays["x_train"]
    assert np.array_equal(tokens, np.round(tokens))  # token ids are kept as they are, never standardised
    assert np.bincount(arrays["y_train"]).tolist()[0] == np.bincount(arrays["y_train"]).tolist()[1]
