"""Tables: columns as read, the choice of how each is used, and their encoding into features.

A table is kept raw (numbers with NaN for missing values, text as codes) until the split
is known, because the encoder learns its means, deviations and fill values from the
training rows only: the validation and test rows must not leak into them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.errors import UserError
from app.data.catalog import COLUMN_TREATMENTS, UploadLimits

MAX_CLASSES_TO_INFER = 20  # a numeric target with more distinct whole numbers is taken as regression


@dataclass
class TableColumn:
    """One column. Numeric: `values` are float64 with NaN where missing. Text: `values` are
    int32 codes into `categories`, -1 where missing, -2 where the value was past the
    number of distinct values kept (`overflow`)."""

    name: str
    values: np.ndarray
    categories: list[str] | None = None
    missing: int = 0
    overflow: bool = False

    @property
    def is_numeric(self) -> bool:
        return self.categories is None

    def sample_text(self, count: int = 3) -> str:
        shown = self.categories[:count] if self.categories else []
        return ", ".join(repr(c) for c in shown)


@dataclass
class RawTable:
    columns: list[TableColumn]
    first_rows: list[list[str]] = field(default_factory=list)  # the file's first rows, as text

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def n_rows(self) -> int:
        return len(self.columns[0].values) if self.columns else 0

    def column(self, name: str) -> TableColumn:
        for column in self.columns:
            if column.name == name:
                return column
        raise UserError(f"There is no column {name!r}. The columns are: {_listing(self.names)}.",
                          field="target")


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _numeric_is_whole(values: np.ndarray) -> bool:
    present = values[~np.isnan(values)]
    return bool(np.all(present == np.round(present)))


def infer_task(column: TableColumn) -> str:
    if not column.is_numeric:
        return "classification"
    present = column.values[~np.isnan(column.values)]
    if _numeric_is_whole(present) and len(np.unique(present)) <= MAX_CLASSES_TO_INFER:
        return "classification"
    return "regression"


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def as_categorical(column: TableColumn, max_distinct: int) -> TableColumn:
    """A numeric column seen as categories (its distinct numbers), e.g. a numeric class label."""
    if not column.is_numeric:
        return column
    present = ~np.isnan(column.values)
    distinct, codes = np.unique(column.values[present], return_inverse=True)
    if len(distinct) > max_distinct:
        return TableColumn(column.name, np.full(len(column.values), -2, np.int32), [], column.missing, True)
    values = np.full(len(column.values), -1, np.int32)
    values[present] = codes
    return TableColumn(column.name, values, [_format_number(v) for v in distinct], column.missing)


def encode_target(column: TableColumn, task: str, limits: UploadLimits) -> tuple[np.ndarray, list[str]]:
    """Labels for every row (missing: -1 or NaN; the caller drops those rows) and class names."""
    if task == "regression":
        if not column.is_numeric:
            raise UserError(
                f"The target column {column.name!r} holds text such as {column.sample_text()}; regression "
                f"needs numbers. Choose task=classification or another target column.", field="task")
        return column.values.astype(np.float32), []
    categorical = as_categorical(column, limits.max_classes)
    if categorical.overflow or len(categorical.categories or []) > limits.max_classes:
        raise UserError(
            f"The target column {column.name!r} has more than {limits.max_classes} different values; "
            f"a classification target may have at most {limits.max_classes} classes. Choose another target "
            f"column{', or task=regression' if column.is_numeric else ''}.", field="target")
    names = list(categorical.categories or [])
    if len(names) < 2:
        raise UserError(f"The target column {column.name!r} holds {len(names)} class(es); classification "
                          f"needs at least 2 different values.", field="target")
    return categorical.values.astype(np.int64), names


@dataclass
class ColumnPlan:
    name: str
    treatment: str      # "numeric", "categorical" or "ignore"
    reason: str         # "auto", "chosen", or why a column was left out


def plan_columns(table: RawTable, target: str, overrides: dict[str, str], limits: UploadLimits) -> list[ColumnPlan]:
    """Decide how each feature column is used: by its content, unless the caller chose."""
    names = set(table.names)
    for name, treatment in overrides.items():
        if name not in names:
            raise UserError(f"`column_types` names a column {name!r} that the file does not have. "
                              f"The columns are: {_listing(table.names)}.", field="column_types")
        if name == target:
            raise UserError(f"{name!r} is the target column; `column_types` sets only feature columns. "
                              f"Choose classification or regression with `task`.", field="column_types")
        assert treatment in COLUMN_TREATMENTS
    plans = []
    for column in table.columns:
        if column.name == target:
            continue
        chosen = overrides.get(column.name)
        if chosen == "numeric" and not column.is_numeric:
            raise UserError(f"Column {column.name!r} holds text such as {column.sample_text()}, so it cannot "
                              f"be numeric. Use categorical or ignore.", field="column_types")
        if chosen == "categorical":
            categorical = as_categorical(column, limits.max_categories)
            if categorical.overflow or len(categorical.categories or []) > limits.max_categories:
                raise UserError(f"Column {column.name!r} has more than {limits.max_categories} different "
                                  f"values, too many to one-hot encode. Use numeric or ignore.",
                                  field="column_types")
        if chosen:
            plans.append(ColumnPlan(column.name, chosen, "chosen"))
        elif column.is_numeric:
            plans.append(ColumnPlan(column.name, "numeric", "auto"))
        elif column.overflow or len(column.categories or []) > limits.max_categories:
            plans.append(ColumnPlan(column.name, "ignore", f"more than {limits.max_categories} different "
                                    "values: looks like an identifier or free text"))
        elif _mostly_unique(column, table.n_rows):
            plans.append(ColumnPlan(column.name, "ignore", "most values differ from row to row: looks like an "
                                    "identifier or free text"))
        else:
            plans.append(ColumnPlan(column.name, "categorical", "auto"))
    if not any(p.treatment != "ignore" for p in plans):
        raise UserError("No feature column is left to learn from: every column besides the target is "
                          "ignored. Add columns, or set `column_types`.", field="column_types")
    return plans


def _mostly_unique(column: TableColumn, n_rows: int) -> bool:
    """Names, ids and comments: one-hot encoding them would only let a model memorise rows."""
    present = n_rows - column.missing
    return present >= 20 and len(column.categories or []) > present / 2


@dataclass
class FeatureEncoder:
    """Standardises numbers and one-hot encodes text, with statistics from the training rows."""

    plans: list[ColumnPlan]
    steps: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def fit(cls, table: RawTable, plans: list[ColumnPlan], train_rows: np.ndarray,
            limits: UploadLimits) -> FeatureEncoder:
        encoder = cls(plans)
        for plan in plans:
            if plan.treatment == "ignore":
                continue
            column = table.column(plan.name)
            if plan.treatment == "numeric":
                train = column.values[train_rows]
                train = train[~np.isnan(train)]
                mean = float(train.mean()) if len(train) else 0.0
                std = float(train.std()) if len(train) else 0.0
                # A constant column would divide by zero; it carries no signal, so it becomes zeros.
                encoder.steps.append({"column": plan.name, "treatment": "numeric", "fill": mean,
                                      "mean": mean, "std": std if std > 1e-12 else 1.0})
            else:
                categorical = as_categorical(column, limits.max_categories)
                categories = categorical.categories or []
                codes = categorical.values[train_rows]
                counts = np.bincount(codes[codes >= 0], minlength=len(categories))
                fill = int(counts.argmax()) if counts.sum() else 0  # the most frequent training value
                encoder.steps.append({"column": plan.name, "treatment": "categorical",
                                      "fill": categories[fill] if categories else "", "fill_code": fill,
                                      "categories": categories})
        width = len(encoder.feature_names)
        if width * table.n_rows > limits.max_prepared_values:
            raise UserError(f"Encoded, this table would hold {table.n_rows} rows x {width} features, more "
                              f"than the {limits.max_prepared_values} values allowed. Ignore some text columns "
                              f"with `column_types`.", field="column_types")
        return encoder

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for step in self.steps:
            if step["treatment"] == "numeric":
                names.append(step["column"])
            else:
                names.extend(f"{step['column']}={category}" for category in step["categories"])
        return names

    def transform(self, table: RawTable, limits: UploadLimits) -> np.ndarray:
        out = np.zeros((table.n_rows, len(self.feature_names)), dtype=np.float32)
        position = 0
        for step in self.steps:
            column = table.column(step["column"])
            if step["treatment"] == "numeric":
                values = np.where(np.isnan(column.values), step["fill"], column.values)
                out[:, position] = (values - step["mean"]) / step["std"]
                position += 1
            elif step["categories"]:  # a column with no values at all adds no features
                codes = as_categorical(column, limits.max_categories).values
                codes = np.where(codes < 0, step["fill_code"], codes)
                out[np.arange(table.n_rows), position + codes] = 1.0
                position += len(step["categories"])
        return out

    def report(self) -> list[dict[str, Any]]:
        """How each column was used, for the preview: what a learner needs to trust the features."""
        by_column = {step["column"]: step for step in self.steps}
        rows = []
        for plan in self.plans:
            step = by_column.get(plan.name, {})
            row: dict[str, Any] = {"name": plan.name, "treatment": plan.treatment, "reason": plan.reason}
            if step:
                row["filled_with"] = (round(step["fill"], 6) if step["treatment"] == "numeric" else step["fill"])
                if step["treatment"] == "categorical":
                    row["categories"] = step["categories"]
            rows.append(row)
        return rows


def take_rows(table: RawTable, rows: np.ndarray) -> RawTable:
    columns = [TableColumn(c.name, c.values[rows], c.categories, 0, c.overflow) for c in table.columns]
    for column in columns:
        column.missing = int(np.isnan(column.values).sum() if column.is_numeric else (column.values == -1).sum())
    return RawTable(columns, table.first_rows)


def column_statistics(table: RawTable) -> list[dict[str, Any]]:
    """Per-column statistics of the raw values (before filling and scaling)."""
    stats = []
    for column in table.columns:
        row: dict[str, Any] = {"name": column.name, "missing": column.missing}
        if column.is_numeric:
            present = column.values[~np.isnan(column.values)]
            for key, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):
                row[key] = round(float(fn(present)), 6) if len(present) else None
        else:
            row.update({"mean": None, "std": None, "min": None, "max": None,
                        "distinct": None if column.overflow else len(column.categories or [])})
        stats.append(row)
    return stats
