"""Prepared datasets shared by the training tests; each is written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.datasets import write_blobs, write_digits, write_regression


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def blobs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_blobs(tmp_path_factory.mktemp("blobs"))


@pytest.fixture(scope="session")
def regression_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_regression(tmp_path_factory.mktemp("regression"))
