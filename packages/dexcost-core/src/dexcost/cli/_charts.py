"""Charts drawn with text: horizontal bars and the cumulative line of a Pareto chart."""

from __future__ import annotations

from decimal import Decimal

_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: Decimal, largest: Decimal, width: int = 24) -> str:
    """A bar ``width`` characters long at ``largest``, in eighths of a character."""
    if largest <= 0 or value <= 0:
        return ""
    eighths = int(value * width * 8 / largest)
    full, part = divmod(max(eighths, 1), 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def gauge(pct: Decimal | None, width: int = 20, mark: int = 80) -> str:
    """Where ``pct`` (0–100) falls on a line, ``●``, with ``|`` at ``mark`` percent."""
    if pct is None:
        return ""
    cells = ["·"] * width
    at_mark = min(width - 1, mark * width // 100)
    cells[at_mark] = "|"
    at = min(width - 1, max(0, int(pct * width / 100)))
    for i in range(at):
        if cells[i] == "·":
            cells[i] = "─"
    cells[at] = "●"
    return "".join(cells)
