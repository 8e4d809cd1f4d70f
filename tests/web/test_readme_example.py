"""The README's Python example, run as written against a live server (only its address changes)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server_process import REPO_ROOT, start_server, stop_server

pytestmark = pytest.mark.slow


def readme_python_example() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"\n  ```python\n(.*?)\n  ```\n", readme, re.S)
    assert block, "the README has no indented python example"
    return "\n".join(line[2:] for line in block.group(1).splitlines())


def test_the_readme_example_builds_trains_follows_and_downloads(tmp_path: Path):
    code = readme_python_example()
    assert 'base_url="http://127.0.0.1:8000/api/v1"' in code
    (tmp_path / "data").mkdir()
    process, base_url = start_server(tmp_path / "data")
    try:
        script = tmp_path / "example.py"
        script.write_text(code.replace("http://127.0.0.1:8000", base_url))
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
    finally:
        stop_server(process)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["epoch 1", "epoch 2", "epoch 3"]
    assert lines[-1].startswith("completed test accuracy 0.")
    assert (tmp_path / "digits_convnet.keras").stat().st_size > 10_000
