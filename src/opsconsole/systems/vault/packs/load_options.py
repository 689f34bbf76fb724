"""The options of `vault-ha.load` (flags, `-o`, the console's form) and their defaults."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, PositiveFloat, PositiveInt

from ....scenarios.engine import ScenarioOptions, option

P99_TARGET_MS = 50.0
FIND_MAX_START_RPS = 250.0
FIND_MAX_STEP_S = 10.0


def parse_mix(value: Any) -> Any:
    """``"90/10"`` → ``(("read", 0.9), ("write", 0.1))``; a tuple passes through."""
    if not isinstance(value, str):
        return value
    try:
        read, write = (float(x) for x in value.split("/"))
    except ValueError:
        raise ValueError(f"{value!r} is not READ/WRITE percentages, e.g. 90/10") from None
    if read < 0 or write < 0 or abs(read + write - 100) > 1e-9:
        raise ValueError(f"{value!r}: the percentages must add up to 100")
    return tuple((k, w / 100) for k, w in (("read", read), ("write", write)) if w > 0)


Mix = Annotated[tuple[tuple[str, float], ...], BeforeValidator(parse_mix)]


class LoadOptions(ScenarioOptions):
    rate: PositiveFloat | None = option(
        None, "req/s offered (default 500; --find-max starts at 250)", "RATE")
    duration: PositiveFloat | None = option(
        None, "seconds of load (default 30; 10 per --find-max step)", "SECONDS")
    users: PositiveInt = option(32, "concurrent connections", "N")
    mix: Mix = option((("read", 0.9), ("write", 0.1)), "read/write percentages "
                      "(default 90/10)", "READ/WRITE")
    find_max: bool = option(False, "step the rate up and report max_rps meeting "
                                   f"p99 < {P99_TARGET_MS:g} ms")


