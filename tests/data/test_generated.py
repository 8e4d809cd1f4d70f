"""The generated 2-D sets: deterministic per seed, the documented shapes, and sensible labels."""

import numpy as np
import pytest

from app.data.generated import GENERATORS, generate_points

CLASSIFICATION = ("circle", "xor", "gaussian", "spiral")
REGRESSION = ("plane", "multi_gaussian")


def test_there_is_a_generator_for_each_generated_set():
    assert set(GENERATORS) == {*CLASSIFICATION, *REGRESSION}


@pytest.mark.parametrize("key", sorted(GENERATORS))
def test_same_seed_same_points_other_seed_other_points(key):
    first = generate_points(key, 300, 0.2, seed=5)
    again = generate_points(key, 300, 0.2, seed=5)
    other = generate_points(key, 300, 0.2, seed=6)
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.y, again.y)
    assert not np.array_equal(first.x, other.x)
    assert first.x.shape == (300, 2) and first.x.dtype == np.float32
    assert np.isfinite(first.x).all()


@pytest.mark.parametrize("key", CLASSIFICATION)
def test_classification_sets_have_two_balanced_classes(key):
    points = generate_points(key, 501, 0.1, seed=0)
    assert points.y.dtype == np.int64 and len(points.class_names) == 2
    counts = np.bincount(points.y, minlength=2)
    assert counts.min() > 150  # labels follow noisy positions, so only roughly half each


@pytest.mark.parametrize("key", REGRESSION)
def test_regression_sets_have_float_targets_in_minus_one_to_one(key):
    points = generate_points(key, 400, 0.0, seed=0)
    assert points.y.dtype == np.float32 and points.class_names == []
    assert -1.3 <= points.y.min() < 0 < points.y.max() <= 1.3


def test_without_noise_the_boundaries_are_clean():
    circle = generate_points("circle", 400, 0.0, seed=1)
    radius = np.linalg.norm(circle.x, axis=1)
    assert np.all((radius < 2.5) == (circle.y == 1))
    xor = generate_points("xor", 400, 0.0, seed=1)
    assert np.all((xor.x[:, 0] * xor.x[:, 1] >= 0) == (xor.y == 1))
    plane = generate_points("plane", 400, 0.0, seed=1)
    np.testing.assert_allclose(plane.y, plane.x.sum(axis=1) / 10, atol=1e-5)


def test_noise_moves_labels_across_the_boundary():
    noisy = generate_points("circle", 2000, 0.5, seed=1)
    radius = np.linalg.norm(noisy.x, axis=1)
    assert np.any((radius < 2.5) != (noisy.y == 1))
