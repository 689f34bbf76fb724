"""Settings of one sessions stack (flags of ``python -m opsconsole_lab.sessions``)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    aws_endpoint: str
    port: int = 0
    region: str = "us-east-1"
    container_proxy: str = ""
    prefix: str = "opsconsole-sessions"
    max_capacity: int = 4
    idle_timeout: float = 300.0
    poll_wait: int = 20
    visibility_timeout: int = 30
    max_receives: int = 3
    redelivery_delay: int = 5
    retry_attempts: int = 6
    retry_base: float = 0.2
    retry_cap: float = 5.0
    worker_concurrency: int = 8
    container_start_timeout: float = 20.0
    reconcile_interval: float = 1.0
    metrics_interval: float = 1.0
    restart_limit: int = 3
    retention_seconds: int = 7 * 24 * 3600
    task_vcpu: float = 0.25
    task_memory_gb: float = 0.5
    contract_only: bool = False
    wrong_type: bool = False

    @property
    def workspaces(self) -> Path:
        return self.state_dir / "workspaces"

    @property
    def containers_dir(self) -> Path:
        return self.state_dir / "containers"

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    def public(self) -> dict[str, object]:
        return {f.name: (str(v) if isinstance(v := getattr(self, f.name), Path) else v)
                for f in fields(self)}


_HELP = {
    "port": "HTTP port of router + control API (0: any free; see <state-dir>/stack.json)",
    "container_proxy": "HTTP proxy URL the router reaches containers through (the lab's "
                       "fault proxy); empty: direct",
    "prefix": "prefix of every AWS resource name (lets several stacks share one moto)",
    "max_capacity": "most edit containers at once; beyond it capacity is refused",
    "idle_timeout": "seconds without activity before a container exits (session expires)",
    "poll_wait": "SQS long-poll seconds (WaitTimeSeconds)",
    "visibility_timeout": "SQS visibility timeout of a received message (extended while busy)",
    "max_receives": "deliveries of one message before it goes to the DLQ and its session fails",
    "redelivery_delay": "seconds before a message whose retries ran out is delivered again",
    "retry_attempts": "attempts per delivery (capacity refused, throttling, container start)",
    "retry_base": "first backoff ceiling in seconds (doubles per attempt, full jitter)",
    "retry_cap": "largest backoff ceiling in seconds",
    "worker_concurrency": "messages hermes handles at once",
    "container_start_timeout": "seconds a container has to answer /health",
    "reconcile_interval": "seconds between reads of the ECS service's desired count",
    "metrics_interval": "seconds between CloudWatch put_metric_data flushes",
    "restart_limit": "crashes of one session's container (per minute) before it fails",
    "retention_seconds": "TTL of ended sessions (DynamoDB expires_at)",
    "contract_only": "serve only the seed's endpoints (docs/contracts/previews.openapi.yaml): "
                     "the control API (/api/email, /api/status, …) is off",
    "wrong_type": "test double: GET /api/health answers uptime_s as a string (a contract "
                  "negative control)",
}


def parse_args(argv: list[str] | None = None) -> StackConfig:
    p = argparse.ArgumentParser(prog="python -m opsconsole_lab.sessions",
                                description="Run the email-to-preview sessions stack.")
    p.add_argument("--state-dir", required=True, type=Path)
    p.add_argument("--aws-endpoint", default=os.environ.get("AWS_ENDPOINT_URL", ""),
                   help="AWS endpoint URL (the lab's moto server)")
    for f in fields(StackConfig):
        if f.name in ("state_dir", "aws_endpoint"):
            continue
        if isinstance(f.default, bool):
            p.add_argument("--" + f.name.replace("_", "-"), action="store_true",
                           help=_HELP.get(f.name))
            continue
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                       help=_HELP.get(f.name))
    ns = p.parse_args(argv)
    if not ns.aws_endpoint:
        p.error("--aws-endpoint (or AWS_ENDPOINT_URL) is required")
    if ns.max_capacity < 0 or ns.max_receives < 1 or ns.retry_attempts < 1:
        p.error("--max-capacity >= 0, --max-receives >= 1 and --retry-attempts >= 1")
    values = vars(ns)
    values["state_dir"] = ns.state_dir.expanduser().resolve()
    return StackConfig(**values)
