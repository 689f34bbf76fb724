"""Small text formatters shared by panes (pure functions, no widgets)."""

from __future__ import annotations

import time

from rich.text import Text

BLOCKS = "▁▂▃▄▅▆▇█"
DASH = "—"


def sparkline(values: list[float], width: int = 16) -> str:
    """Unicode block sparkline of the last ``width`` values (scaled to their max)."""
    tail = values[-width:]
    if not tail:
        return DASH
    top = max(tail)
    if top <= 0:
        return BLOCKS[0] * len(tail)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int(v / top * (len(BLOCKS) - 1)))] for v in tail)


def spark_text(points: list[tuple[float, float]], windows: list[tuple[float, float | None]],
               width: int = 16) -> Text:
    """Sparkline whose points inside a fault window are marked (red, underlined)."""
    tail = points[-width:]
    plain = sparkline([v for _, v in tail], width)
    text = Text(plain)
    for i, (ts, _) in enumerate(tail):
        if any(start <= ts and (end is None or ts <= end) for start, end in windows):
            text.stylize("bold red underline", i, i + 1)
    return text


def rate(value: float | None) -> str:
    if value is None:
        return DASH
    if value >= 10_000:
        return f"{value / 1000:.1f}k/s"
    return f"{value:.1f}/s" if value < 100 else f"{value:.0f}/s"


def compact_size(num_bytes: int | None) -> str:
    """Memory in MiB with one unit letter, for narrow columns (``22.7M``)."""
    if not num_bytes:
        return DASH
    mib = num_bytes / 2**20
    return f"{mib:.1f}M" if mib < 1024 else f"{mib / 1024:.1f}G"


def count(value: int | None) -> str:
    return DASH if value is None else str(value)


def clock(ts: float | None) -> str:
    """UTC wall-clock time: operators across regions read the same timestamps."""
    if ts is None:
        return DASH
    return time.strftime("%H:%M:%S", time.gmtime(ts))
