"""Latency recording in HDR histograms (microsecond resolution, 3 significant digits).

One :class:`Latency` per measured quantity; percentiles and the bucket view the
Scale-test histograms pane draws come from the same histogram. Histograms encode
to a compact string so distributed workers can stream intervals back to a
coordinator, which merges them with :meth:`Latency.add_encoded`.
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

HIGHEST_US = 3_600_000_000  # one hour: a backlog never overflows the histogram
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9, "p99.99": 99.99}
BUCKET_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class Latency:
    """An HDR histogram of latencies recorded in microseconds, read in milliseconds."""

    def __init__(self) -> None:
        self.hist = HdrHistogram(1, HIGHEST_US, 3)

    def record_s(self, seconds: float) -> None:
        self.hist.record_value(min(max(1, int(seconds * 1e6)), HIGHEST_US))

    @property
    def count(self) -> int:
        return self.hist.get_total_count()

    def percentile_ms(self, pct: float) -> float:
        return self.hist.get_value_at_percentile(pct) / 1000.0 if self.count else 0.0

    def max_ms(self) -> float:
        return self.hist.get_max_value() / 1000.0 if self.count else 0.0

    def ladder(self) -> dict[str, float]:
        """p50…p99.99 and max, in ms (empty when nothing was recorded)."""
        if not self.count:
            return {}
        out = {k: round(self.percentile_ms(p), 3) for k, p in PERCENTILES.items()}
        out["max"] = round(self.max_ms(), 3)
        return out

    def buckets(self) -> list[list[float]]:
        """``[[upper_ms, count], …]`` over fixed log-spaced bounds, up to the largest used."""
        counts = [0] * (len(BUCKET_BOUNDS_MS) + 1)
        for item in self.hist.get_recorded_iterator():
            ms = item.value_iterated_to / 1000.0
            idx = next((i for i, b in enumerate(BUCKET_BOUNDS_MS) if ms <= b),
                       len(BUCKET_BOUNDS_MS))
            counts[idx] += item.count_added_in_this_iter_step
        last = max((i for i, c in enumerate(counts) if c), default=-1)
        bounds = [*BUCKET_BOUNDS_MS, float("inf")]
        return [[float(bounds[i]), float(counts[i])] for i in range(last + 1)]

    def add(self, other: Latency) -> None:
        self.hist.add(other.hist)

    def encode(self) -> str:
        return self.hist.encode().decode() if self.count else ""

    def add_encoded(self, encoded: str) -> None:
        if encoded:
            self.hist.decode_and_add(encoded)
