"""Command-line entry point: `opsconsole [COMMAND]`.

User errors become one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import DEFAULT_CONFIG, ConfigError, Inventory, check_config, load_config
from .errors import UserError


def _load_inventory(args: argparse.Namespace) -> Inventory:
    return load_config(args.config or DEFAULT_CONFIG)


def _lab(args: argparse.Namespace):  # -> Lab (imported lazily: keeps `--help` fast)
    from .lab import Lab

    inv = _load_inventory(args)
    if inv.lab is None:
        where = inv.source or args.config
        raise UserError(f"{where}: lab commands need a [lab] section (this config targets "
                        "a real deployment)", exit_code=2)
    return Lab(inv.lab, state_dir=args.state_dir)


# ----------------------------------------------------------------- rendering
def render_status(status: dict[str, Any]) -> None:
    """Human status table (rich); no secrets are in `status` to begin with."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    ok = "[green]healthy[/]"

    def bad(row: dict[str, Any]) -> str:
        return f"[red]{row.get('error', 'unhealthy')}[/]"

    table = Table(title=f"opsconsole lab · {status['state_dir']} · phase {status['phase']}")
    for col in ("node", "kind", "address", "detail", "health"):
        table.add_column(col)
    for n in status["nats"]:
        table.add_row(n["name"], "nats", n["client_url"], f"routes {n['routes']}",
                      ok if n["healthy"] else bad(n))
    for lf in status["leaves"]:
        table.add_row(lf["name"], f"leaf ({lf['user']})", lf["client_url"],
                      f"hub {lf['hub'] or '—'}", ok if lf["healthy"] else bad(lf))
    for v in status["vault"]:
        role = "leader" if v["leader"] else ("voter" if v["voter"] else "non-voter")
        sealed = "sealed" if v["sealed"] else "unsealed"
        table.add_row(v["name"], "openbao", v["api_addr"], f"{role}, {sealed}",
                      ok if v["healthy"] else bad(v))
    if status.get("aws"):
        a = status["aws"]
        table.add_row("moto", "aws", a["endpoint_url"], a["region"],
                      ok if a["healthy"] else bad(a))
    console.print(table)
    verdict = "[green]lab healthy[/]" if status.get("healthy") else "[red]lab NOT healthy[/]"
    console.print(verdict)


# ------------------------------------------------------------------ commands
def cmd_lab_up(args: argparse.Namespace) -> int:
    lab = _lab(args)
    started = time.monotonic()
    status = asyncio.run(lab.up(timeout=args.timeout))
    status["elapsed_seconds"] = round(time.monotonic() - started, 2)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        render_status(status)
    print(f"lab up: {'healthy' if status['healthy'] else 'NOT healthy'} "
          f"in {status['elapsed_seconds']:.2f} s", file=sys.stderr)
    return 0 if status["healthy"] else 1


def cmd_lab_down(args: argparse.Namespace) -> int:
    lab = _lab(args)
    started = time.monotonic()
    stopped = asyncio.run(lab.down())
    took = time.monotonic() - started
    print(f"lab down: stopped {len(stopped)} process(es) in {took:.2f} s"
          + (f" ({', '.join(stopped)})" if stopped else ""))
    return 0


def cmd_lab_status(args: argparse.Namespace) -> int:
    status = asyncio.run(_lab(args).status())
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        render_status(status)
    return 0 if status["healthy"] else 1


def cmd_lab_env(args: argparse.Namespace) -> int:
    for key, value in _lab(args).env().items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    problems = check_config(args.file)
    if not problems:
        print(f"{args.file}: OK")
        return 0
    for line in problems:
        print(line)
    return 1


def cmd_console(args: argparse.Namespace) -> int:
    """Default command: the live console (starts the lab first if the config is the lab)."""
    from .session import ConsoleSession
    from .tui.app import OpsConsoleApp

    session = ConsoleSession(_load_inventory(args), lab_state_dir=args.state_dir,
                             read_only=args.read_only)
    OpsConsoleApp(session).run()
    if session.lab is not None:
        print("opsconsole: the lab is still running; stop it with `opsconsole lab down`")
    return 0


# -------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opsconsole",
        description="Operator console for NATS, OpenBao/Vault and AWS fleets.",
    )
    parser.add_argument("--version", action="version", version=f"opsconsole {__version__}")
    config_help = "inventory TOML (default: config/lab.toml, the embedded lab)"
    state_help = "lab state dir (default: $OPSCONSOLE_LAB_DIR or ./.opsconsole/lab)"
    parser.add_argument("--config", metavar="FILE", type=Path, default=None, help=config_help)
    parser.add_argument("--state-dir", metavar="DIR", default=None, help=state_help)
    parser.add_argument("--read-only", action="store_true",
                        help="refuse every fault action (safe for demos and production)")
    # Sub-commands accept the same options after their name; SUPPRESS keeps a value
    # given before the sub-command from being reset to the default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", type=Path, default=argparse.SUPPRESS,
                        help=config_help)
    common.add_argument("--state-dir", metavar="DIR", default=argparse.SUPPRESS,
                        help=state_help)
    parser.set_defaults(func=cmd_console, timeout=60.0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    tui = sub.add_parser("tui", parents=[common], help="the live console (the default)")
    tui.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                     help="refuse every fault action")
    tui.set_defaults(func=cmd_console)

    lab = sub.add_parser("lab", help="start, stop and inspect the embedded lab")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    up = lab_sub.add_parser("up", parents=[common], help="start the lab (idempotent)")
    up.add_argument("--json", action="store_true", help="print status as JSON")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for health")
    up.set_defaults(func=cmd_lab_up)
    lab_sub.add_parser("down", parents=[common], help="stop every lab process").set_defaults(
        func=cmd_lab_down)
    st = lab_sub.add_parser("status", parents=[common], help="health of every lab node")
    st.add_argument("--json", action="store_true", help="print status as JSON")
    st.set_defaults(func=cmd_lab_status)
    lab_sub.add_parser(
        "env", parents=[common],
        help="print shell export lines for the lab (includes the lab root token)",
    ).set_defaults(func=cmd_lab_env)

    cfg = sub.add_parser("config", help="inventory files")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    chk = cfg_sub.add_parser("check", help="validate a config file")
    chk.add_argument("file", type=Path)
    chk.set_defaults(func=cmd_config_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 1
    except UserError as exc:
        print(f"opsconsole: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("opsconsole: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
