"""Small wording helpers shared by messages."""


def plural(count: int, noun: str) -> str:
    """1 epoch, 2 epochs; 0 units."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
