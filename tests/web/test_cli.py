"""The `layerlab` command: a setting it cannot use stops it with one sentence naming the setting, and
`layerlab db upgrade` brings a database's schema up to date, then says there is nothing left to do."""

from __future__ import annotations

import pytest

from app.cli import main


@pytest.mark.parametrize(("variable", "value", "problem"), [
    ("LAYERLAB_EXECUTOR", "rya", "LAYERLAB_EXECUTOR: Input should be 'local' or 'ray'"),
    ("LAYERLAB_GPUS", "a,b", "LAYERLAB_GPUS: 'a,b' is not a GPU list: use auto, none, or GPU indices such as 0,1"),
    ("LAYERLAB_PORT", "http", "LAYERLAB_PORT: Input should be a valid integer"),
    ("LAYERLAB_MODE", "workshop", "Workshop mode needs an instructor password: set LAYERLAB_INSTRUCTOR_PASSWORD"),
])
def test_a_setting_it_cannot_use_stops_it_naming_the_setting(monkeypatch, tmp_path, variable, value, problem):
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as stopped:
        main([])
    assert str(stopped.value.code).startswith(f"layerlab: cannot start: {problem}")
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_db_upgrade_applies_the_migrations_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(tmp_path))
    main(["db", "upgrade"])
    assert capsys.readouterr().out.startswith("upgraded from an empty database to ")
    main(["db", "upgrade"])
    assert capsys.readouterr().out == "The database is up to date.\n"
