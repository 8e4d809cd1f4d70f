"""Small wording helpers shared by messages."""


def byte_size(value: float | None) -> str:
    """1,536 -> "1.5 KB": sizes as people read them."""
    if value is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GB"


def plural(count: int, noun: str) -> str:
    """1 epoch, 2 epochs; 0 units."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def one_of(choices: tuple[str, ...] | list[str]) -> str:
    """"LSTM, GRU or SimpleRNN": a few alternatives in words."""
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"
