"""Prometheus text exposition → samples, via prometheus_client's parser."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Scrape:
    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)
    families: int = 0  # metric families in the whole exposition, kept or not
    #: the node answered but served no metrics (e.g. HTTP 400 "prometheus is not enabled":
    #: no telemetry stanza, or 403 for the token): up, but the rules cannot judge it
    unavailable: str = ""

    @classmethod
    def parse(cls, text: str, keep: tuple[str, ...] = ("vault_core_",)) -> Scrape:
        """Parse only the families whose names start with ``keep`` (a node exposes ~200;
        parsing all of them costs ~15 ms here, the few the rules need well under 1)."""
        lines = text.splitlines()
        wanted = "\n".join(line for line in lines
                           if line.startswith(keep) or line.startswith(
                               tuple(f"# TYPE {k}" for k in keep)))
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(wanted + "\n"):
            for s in family.samples:
                out.setdefault(s.name, []).append((s.labels, s.value))
        return cls(out, sum(1 for line in lines if line.startswith("# TYPE ")))

    def value(self, name: str, **labels: str) -> float | None:
        """The first sample of ``name`` whose labels include ``labels``."""
        for have, value in self.samples.get(name, ()):
            if all(have.get(k) == v for k, v in labels.items()):
                return value
        return None
