"""The exported script as a Jupyter notebook: the same parts, one cell each, main() run as cells."""

from __future__ import annotations

import json

from app.core.codegen import NOTEBOOK_FOLDER, SCRIPT_FOLDER, Script, comment_text


def _cell(kind: str, text: str) -> dict[str, object]:
    lines = text.rstrip("\n").split("\n")
    source = [line + "\n" for line in lines[:-1]] + lines[-1:]
    cell: dict[str, object] = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        cell.update({"execution_count": None, "outputs": []})
    return cell


def notebook(script: Script) -> str:
    header = "\n".join(line.removeprefix("# ") for line in script.header)
    title = comment_text(script.title).replace("#", "")
    cells = [_cell("markdown", f"# {title}\n\n{header}"),
             _cell("code", script.imports + ("\n" + script.constants.replace(SCRIPT_FOLDER, NOTEBOOK_FOLDER)
                                             if script.constants else ""))]
    cells += [_cell("code", function) for function in script.functions]
    cells.append(_cell("code", "\n".join(line for line in script.main_body if not line.startswith("return "))))
    document = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                            "name": "python3"},
                                             "language_info": {"name": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(document, indent=1) + "\n"
