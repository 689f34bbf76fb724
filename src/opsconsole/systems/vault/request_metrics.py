"""Client-side Vault request outcomes, as a Prometheus counter.

OpenBao's /v1/sys/metrics has no per-status request counter (``vault_core_handle_request``
is a latency summary without status), so the error rate can only be seen by clients.
opsconsole counts every Vault call it makes — probes, checks, the load generator — in
``opsconsole_vault_requests_total{addr,outcome}`` (outcome ``ok`` or ``error``: a network
failure or a 5xx). ``opsconsole --metrics-port`` serves it to Prometheus; the console's
own alert evaluation reads the same counter.
"""

from __future__ import annotations

from prometheus_client import Counter, start_http_server

VAULT_REQUESTS = Counter("opsconsole_vault_requests", "Vault API calls made by opsconsole",
                         ["addr", "outcome"])


def count(addr: str, ok: bool, n: int = 1) -> None:
    if n > 0:
        VAULT_REQUESTS.labels(addr=addr, outcome="ok" if ok else "error").inc(n)


def totals() -> tuple[float, float]:
    """(all requests, failed requests) so far, over every address."""
    total = errors = 0.0
    for metric in VAULT_REQUESTS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                total += sample.value
                if sample.labels.get("outcome") == "error":
                    errors += sample.value
    return total, errors


def serve(port: int) -> None:
    """Expose the counters on 127.0.0.1:``port``/metrics (a daemon thread)."""
    start_http_server(port, addr="127.0.0.1")
