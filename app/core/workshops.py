"""What a workshop is made of, in pure Python: its limits, join codes, names, PINs and challenge budgets."""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.core.errors import UserError, invalid_value

# No 0/O, 1/I/L, 5/S, 2/Z: a code read off a projector from the back of the room is typed right.
CODE_ALPHABET = "ABCDEFGHJKMNPQRTUVWXY346789"
CODE_LENGTH = 8
PIN_DIGITS = 6
MAX_NAME_CHARS = 40
CHALLENGE_METRICS = {"accuracy": "classification", "macro_f1": "classification", "mae": "regression",
                     "rmse": "regression", "r2": "regression"}
HIGHER_IS_BETTER = {"accuracy", "macro_f1", "r2"}


class WorkshopLimits(BaseModel):
    """What each participant may use; the server's own limits apply on top."""

    model_config = ConfigDict(extra="forbid")

    runs_at_once: int = Field(1, ge=1, le=20, description="Runs a participant may have queued or running at once.")
    max_epochs: int = Field(30, ge=1, le=1000, description="Epochs one run may train.")
    max_params: int = Field(500_000, ge=100, le=100_000_000, description="Parameters one model may have.")
    uploads: bool = Field(False, description="Whether participants may upload their own data.")
    max_upload_mb: int = Field(10, ge=1, le=1024, description="Largest upload, in MB, when uploads are allowed.")

    @classmethod
    def parse(cls, values: Any) -> WorkshopLimits:
        return parse_settings(cls, "limits", values)


class ChallengeBudget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    params: int = Field(100_000, ge=10, le=100_000_000, description="Most parameters a submitted model may have.")
    epochs: int = Field(20, ge=1, le=1000, description="Most epochs a submitted run may have trained.")
    submissions: int = Field(5, ge=1, le=100, description="Submissions each participant may make.")

    @classmethod
    def parse(cls, values: Any) -> ChallengeBudget:
        return parse_settings(cls, "budget", values)


Settings = TypeVar("Settings", WorkshopLimits, ChallengeBudget)


def parse_settings(kind: type[Settings], owner: str, values: Any) -> Settings:
    """An object of settings checked as Keras checks arguments: the field at fault, what it allows."""
    if values is not None and not isinstance(values, dict):
        raise invalid_value(owner, "an object with " + ", ".join(kind.model_fields), values)
    try:
        return kind.model_validate(values or {})
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or owner
        allowed = "; ".join(f"{key} ({field.description})" for key, field in kind.model_fields.items())
        raise UserError(f"Invalid value received for `{owner}.{name}`: {first['msg']}. Allowed: {allowed}",
                        field=f"{owner}.{name}") from None


def new_join_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(typed: str) -> str:
    """What a participant typed, as stored: capitals, without spaces or dashes ("kq7m-4xtp" is "KQ7M4XTP")."""
    return re.sub(r"[\s-]", "", typed or "").upper()[:32]


def shown_code(code: str) -> str:
    """The code as a projector shows it: two groups of four."""
    return f"{code[:4]}-{code[4:]}" if len(code) == CODE_LENGTH else code


def new_pin() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))


def checked_display_name(typed: Any) -> str:
    """A display name: 1 to 40 printable characters, no markup characters, spaces tidied."""
    if not isinstance(typed, str):
        raise invalid_value("display_name", "a name of 1 to 40 characters", typed)
    name = " ".join(unicodedata.normalize("NFC", typed).split())
    if not name or len(name) > MAX_NAME_CHARS:
        raise invalid_value("display_name", f"a name of 1 to {MAX_NAME_CHARS} characters", typed)
    if any(char in "<>" for char in name) or any(unicodedata.category(c).startswith("C") for c in name):
        raise invalid_value("display_name", "a name without < or > and without control characters",
                            typed)
    return name


def name_key(name: str) -> str:
    return name.casefold()


def checked_title(typed: Any, field: str = "name") -> str:
    """A workshop's or a challenge's title: 1 to 80 characters, spaces tidied."""
    if not isinstance(typed, str) or not typed.strip() or len(typed.strip()) > 80:
        raise invalid_value(field, "a title of 1 to 80 characters", typed)
    return " ".join(typed.split())


def is_better(metric: str, value: float, than: float | None) -> bool:
    if than is None:
        return True
    return value > than if metric in HIGHER_IS_BETTER else value < than


def reaches(metric: str, value: float | None, target: float | None) -> bool:
    if value is None or target is None:
        return False
    return value >= target if metric in HIGHER_IS_BETTER else value <= target
