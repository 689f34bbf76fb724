"""`opsconsole agent --nats URL [--name NAME]`: a mesh worker for distributed scale runs.

The worker hosts simulated mesh agents for whichever coordinator (``opsconsole run
mesh.scale``) sends it a job over NATS, one job at a time, until SIGTERM / Ctrl-C or a
``quit`` message (see :mod:`opsconsole.systems.mesh.scale_worker`). Start one per core on each load
host, e.g. over SSH: ``ssh host opsconsole agent --nats nats://hub:4222 --name host-1``.

``cli.build_parser`` registers it with ``add_agent_parser(sub)``; errors are raised as
``UserError`` (one line, exit 2), which ``cli.main`` prints.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from .argtypes import positive
from .errors import UserError


def add_agent_parser(sub: Any) -> None:
    """Register the ``agent`` sub-command on an ``add_subparsers()`` object."""
    agent = sub.add_parser(
        "agent", help="host simulated mesh agents for distributed scale runs (a worker)",
        description="Host simulated mesh agents for `mesh.scale` coordinators, one job at "
                    "a time, until SIGTERM or Ctrl-C.")
    agent.add_argument("--nats", required=True, metavar="URL",
                       help="NATS server the coordinator uses, e.g. nats://10.0.0.5:4222")
    agent.add_argument("--name", default=None, metavar="NAME",
                       help="worker name coordinators address (default HOST-PID; letters, "
                            "digits, '_' and '-')")
    agent.add_argument("--connect-timeout", type=positive(float), default=10.0, metavar="SECONDS",
                       help="give up when NATS is not reachable within this (default 10)")
    agent.set_defaults(func=cmd_agent)


def cmd_agent(args: argparse.Namespace) -> int:
    """Run a worker until SIGTERM / Ctrl-C; ``UserError`` (exit 2) if it cannot start."""
    import logging

    from .systems.mesh.scale_worker import WorkerError, check_nats_url, check_token, serve

    try:
        check_nats_url(args.nats)
    except ValueError as exc:
        raise UserError(f"--nats: {exc}", exit_code=2) from None
    try:
        if args.name is not None:
            check_token("worker name", args.name)
    except ValueError as exc:
        raise UserError(f"--name: {exc}", exit_code=2) from None
    logging.basicConfig(level=logging.WARNING, format="opsconsole agent: %(message)s")
    from .report.redact import Redactor, install_log_redaction

    install_log_redaction(Redactor())
    try:
        asyncio.run(serve(args.nats, args.name, connect_timeout=args.connect_timeout))
    except WorkerError as exc:
        raise UserError(str(exc), exit_code=2) from None
    return 0
