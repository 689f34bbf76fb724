"""Command-line entry point: `opsconsole [COMMAND]`.

User errors become one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .argtypes import positive
from .cli_agent import add_agent_parser
from .cli_completion import SHELLS
from .cli_history import add_history_parser
from .config import ConfigError, Inventory, check_config, load_config
from .core import system as system_registry
from .core.results import ScenarioResult
from .errors import UserError


def _load_inventory(args: argparse.Namespace) -> Inventory:
    inv = _read_inventory(args)
    if getattr(args, "read_only", False):  # --read-only: as if the config said so
        inv = inv.model_copy(update={"read_only": True})
    return inv


def _read_inventory(args: argparse.Namespace) -> Inventory:
    """The inventory from the search path: --config, $OPSCONSOLE_CONFIG, the XDG file, the
    vault/NATS environment, the built-in default (:mod:`opsconsole.cli_info`)."""
    from .cli_info import config_search

    search = config_search(args.config)
    path = search.path()
    if search.from_environment:
        from .config import env_inventory

        return env_inventory()
    if path is None:
        # Installed without the source tree (no config/lab.toml): the lab's defaults.
        from .config import LabSpec

        return Inventory(name="lab", lab=LabSpec())
    return load_config(path)


def _targets(args: argparse.Namespace) -> Inventory:
    """The inventory with the running lab's targets filled in (when it has a [lab])."""
    inv = _load_inventory(args)
    if inv.lab is None:
        return inv
    from .lab import Lab
    from .lab.inventory import lab_inventory

    return lab_inventory(Lab(inv.lab, state_dir=args.state_dir), inv)


def _print_json(doc: Any) -> None:
    """The one JSON document a `--json` command prints on stdout."""
    print(json.dumps(doc, indent=2))


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
    for col in ("node", "kind", "address", "tls", "detail", "health"):
        table.add_column(col, overflow="fold")
    for n in status["nats"]:
        table.add_row(n["name"], "nats", n["client_url"], n.get("tls", "—"),
                      f"routes {n['routes']}", ok if n["healthy"] else bad(n))
    for lf in status["leaves"]:
        table.add_row(lf["name"], f"leaf ({lf['user']})", lf["client_url"], lf.get("tls", "—"),
                      f"hub {lf['hub'] or '—'}", ok if lf["healthy"] else bad(lf))
    for v in status["vault"]:
        role = "leader" if v["leader"] else ("voter" if v["voter"] else "non-voter")
        sealed = "sealed" if v["sealed"] else "unsealed"
        table.add_row(v["name"], "openbao", v["api_addr"], v.get("tls", "—"),
                      f"{role}, {sealed}", ok if v["healthy"] else bad(v))
    if status.get("aws"):
        a = status["aws"]
        table.add_row("moto", "aws", a["endpoint_url"], "plain (loopback)",
                      a["region"], ok if a["healthy"] else bad(a))
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
        _print_json(status)
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
    if args.json:
        _print_json({"state_dir": str(lab.dir.root), "stopped": stopped,
                     "elapsed_seconds": round(took, 2)})
        return 0
    print(f"lab down: stopped {len(stopped)} process(es) in {took:.2f} s"
          + (f" ({', '.join(stopped)})" if stopped else ""))
    return 0


def cmd_lab_status(args: argparse.Namespace) -> int:
    status = asyncio.run(_lab(args).status())
    if args.json:
        _print_json(status)
    else:
        render_status(status)
    return 0 if status["healthy"] else 1


def cmd_lab_env(args: argparse.Namespace) -> int:
    for key, value in _lab(args).env().items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    """Exit 0 valid, 1 with one line per problem (the file's verdict, not a failure to run)."""
    problems = check_config(args.file)
    if args.json:
        _print_json({"file": str(args.file), "ok": not problems, "problems": problems})
        return 1 if problems else 0
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
    from .tui.keymap import load_keymap

    keymap = load_keymap()  # a bad keymap file: one line, exit 2, nothing started
    session = ConsoleSession(_load_inventory(args), lab_state_dir=args.state_dir,
                             read_only=args.read_only)
    OpsConsoleApp(session, keymap=keymap).run()
    if session.lab is not None:
        print("opsconsole: the lab is still running; stop it with `opsconsole lab down`")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The guided tour on the lab (same engine and scenarios as `run`)."""
    from .session import ConsoleSession
    from .tui.demo_app import DemoApp
    from .tui.keymap import load_keymap

    keymap = load_keymap()
    inv = _load_inventory(args)
    if inv.lab is None:
        raise UserError("the demo runs on the embedded lab: drop --config, or use a config "
                        "with a [lab] section", exit_code=2)
    if inv.read_only:
        why = "--read-only was given" if args.read_only else "the config sets read_only = true"
        raise UserError(f"the demo injects faults; {why}", exit_code=2)
    session = ConsoleSession(inv, lab_state_dir=args.state_dir)
    app = DemoApp(session, auto=args.auto, hold_s=args.hold, report_dir=args.report,
                  keymap=keymap)
    app.run()
    demo = app.demo
    if demo is None:
        print("opsconsole: the demo did not start", file=sys.stderr)
        return 2
    done = sum(r.status == "pass" for r in demo.results)
    print(f"demo: {done}/{len(demo.results)} steps passed · report {demo.report_dir}"
          + (f" · {demo.verdict}" if demo.verdict else " · report written, not verified "
             "(the walkthrough stopped early)"))
    return 0 if demo.passed else 1


def cmd_scenarios_list(args: argparse.Namespace) -> int:
    from .scenarios import all_scenarios

    items = [{"id": s.id, "title": s.title, "pack": s.id.split(".")[0]}
             for s in all_scenarios()]
    if args.json:
        _print_json(items)
    else:
        for item in items:
            print(f"{item['id']:<28} {item['title']}")
    return 0


STATUS_STYLE = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "error": "[red]ERROR[/]",
                "warn": "[yellow]warn[/]", "unknown": "[yellow]unknown[/]"}


def _print_results(results: list[ScenarioResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    for sc in results:
        colour = {"pass": "green", "fail": "red", "error": "red"}.get(sc.status, "yellow")
        table = Table(title=f"{sc.id} — [{colour}]{sc.status.upper()}[/] "
                            f"in {sc.duration_s:.1f} s", title_justify="left")
        for col in ("phase", "check", "status", "time"):
            table.add_column(col)
        for c in sc.checks:
            st = STATUS_STYLE.get(c.status, f"[red]{c.status}[/]")
            table.add_row(c.phase, c.name, st, f"{c.duration_s:.2f} s")
        console.print(table)
        if sc.reason:
            console.print(f"  reason: {sc.reason}")
        if sc.metrics:
            console.print("  metrics: " + ", ".join(f"{k}={v:g}" for k, v in
                                                    sorted(sc.metrics.items())))


def _print_verdict(what: str, status: str, results: list[ScenarioResult], tail: str,
                   strict: bool, error: str | None = None) -> None:
    """The verdict line and one line per scenario that did not pass (stderr): the same
    verdict as the exit code, the JUnit file and the transcript."""
    from .core.verdict import counts, not_passed, summary_line

    print(f"{what}: {status.upper()} · {summary_line(counts(results))} · {tail}",
          file=sys.stderr)
    if error:
        print(f"  could not run: {error}", file=sys.stderr)
    for st, sid, reason in not_passed(results, strict=strict):
        print(f"  {st}: {sid}: {reason}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import dry_run_plan, run_headless
    from .scenarios import resolve
    from .scenarios.options import parse_assignments

    options = {k: getattr(args, k) for k in args.option_names if getattr(args, k) is not None}
    options.update(parse_assignments(args.assignments))
    scenarios = resolve(args.selector, options)  # bad selector or flag: exit 2, nothing run
    inv = _load_inventory(args)
    if args.dry_run:
        plan = dry_run_plan(scenarios)
        if args.json:
            _print_json(plan)
        else:
            for item in plan:
                print(f"{item['id']}: {item['title']}")
                for name in item["steady_state"]:
                    print(f"  steady state: {name}")
                for step in item["method"]:
                    print(f"  method: {step}")
                for what in item["mutates"]:
                    print(f"  changes: {what}")
        return 0

    async def main() -> Any:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run_headless(inv, args.selector, scenarios=scenarios,
                                  report_dir=args.report,
                                  lab_state_dir=args.state_dir, strict=args.strict)

    try:
        outcome = asyncio.run(main())
    except asyncio.CancelledError:
        print("opsconsole: run terminated; faults healed, report written", file=sys.stderr)
        return 143
    results = [{k: sc[k] for k in ("id", "status", "reason", "checks", "metrics")}
               for sc in (r.as_json() for r in outcome.scenarios)]  # --json: the edge
    if args.json:
        _print_json(results)
    else:
        _print_results(outcome.scenarios)
    _print_verdict(f"run {outcome.run_id}", outcome.status, outcome.scenarios,
                   f"report {outcome.report_dir}", args.strict, outcome.error)
    return outcome.exit_code


def cmd_smoke(args: argparse.Namespace) -> int:
    from .smoke import run_smoke

    inv = _load_inventory(args)
    report = args.report or Path(".opsconsole") / "reports" / (
        time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-smoke")

    async def main() -> Any:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run_smoke(inv, report_dir=report, mode=args.mode,
                               memory_budget_mib=args.memory_budget_mib,
                               lab_state_dir=args.state_dir, boot_timeout=args.boot_timeout,
                               strict=args.strict)

    try:
        out = asyncio.run(main())
    except asyncio.CancelledError:
        print("opsconsole: smoke terminated; faults healed", file=sys.stderr)
        return 143
    if args.json:
        _print_json({"status": out.run.status, "summary": out.summary,
                     "failures": out.failures, "unknowns": out.unknowns,
                     "transcript": str(out.transcript)})
    else:
        _print_results(out.run.scenarios)
    s = out.summary
    print(f"smoke {out.run.status.upper()}: {s['passed']} passed, {s['failed']} failed, "
          f"{s['warned']} warned, {s['unknown']} unknown · boot transcript {out.transcript}",
          file=sys.stderr)
    if out.run.error:
        print(f"  could not run: {out.run.error}", file=sys.stderr)
    for line in out.failures:
        print(f"  failed: {line}", file=sys.stderr)
    for line in out.unknowns:
        print(f"  unknown: {line}", file=sys.stderr)
    return out.run.exit_code


def cmd_heal(args: argparse.Namespace) -> int:
    """Heal every open fault in the ledger, whoever injected it."""
    from .session import ConsoleSession

    async def main() -> tuple[list[Any], list[Any]]:
        session = ConsoleSession(_load_inventory(args), lab_state_dir=args.state_dir,
                                 start_lab=False, probes=False)
        await session.start()  # heals what crashed runs left behind
        assert session.faults is not None
        recovered = session.recovered
        rest = await session.faults.heal_all()
        await session.stop(heal=False)
        return recovered, rest

    recovered, rest = asyncio.run(main())
    records = [*recovered, *rest]
    ok = all(r.status == "healed" for r in records)
    if args.json:  # what the text shows; never the records' params (they may hold secrets)
        _print_json({"ok": ok, "faults": [
            {"id": r.id, "fault": r.fault, "target": r.target, "status": r.status,
             "note": r.note, "left_by_earlier_run": i < len(recovered)}
            for i, r in enumerate(records)]})
        return 0 if ok else 1
    for rec in records:
        print(f"{rec.status:<11} {rec.fault} on {rec.target} ({rec.id}): {rec.note}")
    if not records:
        print("no open faults")
    return 0 if ok else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from .report.transcript import verify_transcript

    path = args.file / "transcript.json" if args.file.is_dir() else args.file
    ok, message = verify_transcript(path, expect_key=args.expect_key)
    if args.json:  # the signer's key is public: always there when the transcript verified
        key = json.loads(path.read_text())["public_key"] if ok else None
        _print_json({"ok": ok, "transcript": str(path), "message": message,
                     "public_key": key})
        return 0 if ok else 1
    print(message, file=sys.stdout if ok else sys.stderr)
    if ok and args.print_key:
        print(json.loads(path.read_text())["public_key"])
    return 0 if ok else 1


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay import ReplaySession, journal_problem
    from .tui.app import OpsConsoleApp
    from .tui.keymap import load_keymap

    keymap = load_keymap()
    if args.speed <= 0:
        raise UserError(f"--speed: must be positive, got {args.speed}", exit_code=2)
    problem = journal_problem(args.journal)
    if problem:  # said before the console opens: nothing to play
        raise UserError(problem, exit_code=2)
    OpsConsoleApp(ReplaySession(args.journal, speed=args.speed), keymap=keymap).run()
    return 0


def cmd_vault_health(args: argparse.Namespace) -> int:
    """Every Vault node's health in one table; exit 0 only when all are healthy."""
    import aiohttp
    from rich.console import Console
    from rich.table import Table

    from .systems.vault.health import cluster_rows
    from .systems.vault.probe import VaultClusterProbe

    inv = _targets(args)
    if inv.vault is None:
        raise UserError(f"{inv.source or inv.name}: no [vault] target (and no lab running)",
                        exit_code=2)

    async def sample() -> list[Any]:
        from .targets.http import reason

        async with aiohttp.ClientSession() as http:
            probe = VaultClusterProbe(http, inv.vault, inv.vault.token)
            try:
                return await probe.sample()
            except Exception as exc:  # as the console's probe loop shows it: unreachable
                return probe.unreachable(reason(exc))

    rows, healthy = cluster_rows(asyncio.run(sample()),
                                 {n.name: n.api_addr for n in inv.vault.nodes})
    if args.json:
        _print_json({"target": inv.name, "healthy": healthy, "nodes": rows})
        return 0 if healthy else 1
    table = Table(title=f"Vault cluster · {inv.name}")
    for col in ("node", "address", "health", "role", "sealed", "voter", "version"):
        table.add_column(col, overflow="fold")
    for r in rows:
        colour = "green" if r["healthy"] else "red"
        table.add_row(r["name"], r["api_addr"], f"[{colour}]{r['health']}[/]", r["role"],
                      r["sealed"], r["voter"], r["version"])
    Console().print(table)
    _print_unhealthy(rows, "api_addr")
    verdict = "[green]all nodes healthy[/]" if healthy else "[red]NOT healthy[/]"
    Console().print(verdict)
    return 0 if healthy else 1


def _print_unhealthy(rows: list[dict[str, Any]], addr_key: str) -> None:
    """One plain line per unhealthy node (the table wraps long causes): name, address and
    the cause, for the operator and for grep."""
    for r in rows:
        if not r["healthy"]:
            print(f"{r['name']} ({r[addr_key]}): {r['health']}")


def cmd_nats_health(args: argparse.Namespace) -> int:
    """Every NATS node and leaf, through a client connection made with the inventory's
    credentials and TLS (and monitoring where configured); exit 0 only when all are healthy."""
    import aiohttp
    from rich.console import Console
    from rich.table import Table

    from .systems.nats.health import leaf_health, node_health
    from .systems.nats.probe import LeafProbe, NatsNodeProbe

    inv = _targets(args)
    if not inv.nats and not inv.leaves:
        raise UserError(f"{inv.source or inv.name}: no [[nats]] or [[leaves]] target (and no "
                        "lab running)", exit_code=2)

    async def sample() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as http:
            probes: list[Any] = [(c.endpoint(n).url, NatsNodeProbe(http, n, len(c.nodes), c))
                                 for c in inv.nats for n in c.nodes]
            probes += [(lf.client_url, LeafProbe(http, lf)) for lf in inv.leaves]

            async def one(url: str, probe: Any) -> dict[str, Any]:
                from .targets.http import reason

                try:
                    [event] = await probe.sample()
                except Exception as exc:  # what the console's probe loop would show
                    [event] = probe.unreachable(reason(exc))
                finally:
                    await probe.close()
                leaf = isinstance(probe, LeafProbe)
                h = leaf_health(event) if leaf else node_health(event)
                return {"name": h.name, "kind": "leaf" if leaf else "node", "url": url,
                        "healthy": h.healthy, "health": h.health, "role": h.role}

            return list(await asyncio.gather(*(one(u, p) for u, p in probes)))

    rows = asyncio.run(sample())
    healthy = all(r["healthy"] for r in rows)
    if args.json:
        _print_json({"target": inv.name, "healthy": healthy, "nodes": rows})
        return 0 if healthy else 1
    table = Table(title=f"NATS · {inv.name}")
    for col in ("node", "kind", "url", "health", "role"):
        table.add_column(col, overflow="fold")
    for r in rows:
        colour = "green" if r["healthy"] else "red"
        table.add_row(r["name"], r["kind"], r["url"], f"[{colour}]{r['health']}[/]", r["role"])
    Console().print(table)
    _print_unhealthy(rows, "url")
    Console().print("[green]all nodes healthy[/]" if healthy else "[red]NOT healthy[/]")
    return 0 if healthy else 1


def cmd_info(args: argparse.Namespace) -> int:
    """Config search path, state/ledger/key/lab dirs, versions; exit 2 if the inventory
    cannot be loaded (the report is printed all the same)."""
    from .cli_info import info_report, render_info

    report = info_report(args.config, args.state_dir)
    if args.json:
        _print_json(report)
    else:
        print("\n".join(render_info(report)))
    for problem in report["config"]["problems"]:
        print(f"opsconsole: {problem}", file=sys.stderr)
    return 2 if report["config"]["problems"] else 0


def cmd_completion(args: argparse.Namespace) -> int:
    """Print the completion script for ``args.shell`` (scenario ids included)."""
    from .cli_completion import completion_script
    from .scenarios import PACKS, all_scenarios

    selectors = sorted({*PACKS, *(s.id for s in all_scenarios())})
    sys.stdout.write(completion_script(build_parser(), args.shell, selectors))
    return 0


# -------------------------------------------------------------------- parser
class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (what is wrong, and where help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from .scenarios import all_scenarios
    from .scenarios.options import add_option_flags

    parser = OneLineParser(
        prog="opsconsole",
        description="Operator console for NATS, OpenBao/Vault and AWS fleets.",
    )
    parser.add_argument("--version", action="version", version=f"opsconsole {__version__}")
    config_help = ("inventory TOML (default: $OPSCONSOLE_CONFIG, else "
                   "$XDG_CONFIG_HOME/opsconsole/config.toml if it exists, else the vault/NATS "
                   "environment (VAULT_ADDR, NATS_URL, NATS_CONTEXT) if set, else "
                   "config/lab.toml, the embedded lab; opsconsole info shows which)")
    state_help = "lab state dir (default: $OPSCONSOLE_LAB_DIR or ./.opsconsole/lab)"
    parser.add_argument("--config", metavar="FILE", type=Path, default=None, help=config_help)
    parser.add_argument("--state-dir", metavar="DIR", default=None, help=state_help)
    parser.add_argument("--read-only", action="store_true", help=READ_ONLY_HELP)
    metrics_help = ("serve opsconsole's client-side Vault request counters for Prometheus "
                    "on 127.0.0.1:PORT/metrics (see config/prometheus/)")
    parser.add_argument("--metrics-port", metavar="PORT", type=positive(int), default=None,
                        help=metrics_help)
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
    tui.add_argument("--metrics-port", metavar="PORT", type=positive(int),
                     default=argparse.SUPPRESS, help=metrics_help)
    tui.set_defaults(func=cmd_console)

    lab = sub.add_parser("lab", help="start, stop and inspect the embedded lab")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    up = lab_sub.add_parser("up", parents=[common], help="start the lab (idempotent)")
    up.add_argument("--json", action="store_true", help="print status as JSON")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for health")
    up.set_defaults(func=cmd_lab_up)
    down = lab_sub.add_parser("down", parents=[common], help="stop every lab process")
    down.add_argument("--json", action="store_true", help="print what was stopped as JSON")
    down.set_defaults(func=cmd_lab_down)
    st = lab_sub.add_parser("status", parents=[common], help="health of every lab node")
    st.add_argument("--json", action="store_true", help="print status as JSON")
    st.set_defaults(func=cmd_lab_status)
    lab_sub.add_parser(
        "env", parents=[common],
        help="print shell export lines for the lab (includes the lab root token)",
    ).set_defaults(func=cmd_lab_env)

    scen = sub.add_parser("scenarios", help="scenario packs")
    scen_sub = scen.add_subparsers(dest="scenarios_command", metavar="ACTION", required=True)
    sl = scen_sub.add_parser("list", help="every scenario id")
    sl.add_argument("--json", action="store_true")
    sl.set_defaults(func=cmd_scenarios_list)

    run = sub.add_parser("run", parents=[common], help="run a scenario or a pack headless")
    run.add_argument("selector", metavar="ID|PACK")
    run.add_argument("--report", metavar="DIR", type=Path, default=None,
                     help="report dir (default: .opsconsole/reports/<time>-<run id>)")
    run.add_argument("--json", action="store_true", help="print per-scenario results as JSON")
    run.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    run.add_argument("--strict", action="store_true",
                     help="any unknown (a scenario or a single check) fails the run (for CI)")
    run.add_argument("--metrics-port", metavar="PORT", type=positive(int),
                     default=argparse.SUPPRESS, help=metrics_help)
    opts = run.add_argument_group(
        "scenario options (from each scenario's options model; also -o KEY=VALUE)")
    opts.add_argument("-o", "--option", dest="assignments", action="append",
                      metavar="KEY=VALUE", help="set any scenario option by name, repeatable")
    run.set_defaults(option_names=add_option_flags(opts, all_scenarios()))
    run.set_defaults(func=cmd_run)

    add_agent_parser(sub)
    add_history_parser(sub)

    demo = sub.add_parser("demo", parents=[common],
                          help="a guided tour of the console on the lab, step by step")
    demo.add_argument("--auto", action="store_true",
                      help="advance by itself and exit at the end (0 if the report verified)")
    demo.add_argument("--hold", type=positive(float), default=3.0, metavar="SECONDS",
                      help="with --auto, how long each step's result stays on screen")
    demo.add_argument("--report", metavar="DIR", type=Path, default=None,
                      help="report dir (default: .opsconsole/reports/<time>-<run id>)")
    demo.set_defaults(func=cmd_demo)

    smoke = sub.add_parser("smoke", parents=[common],
                           help="prove a deployment is ready: 9 phases, signed boot transcript")
    mode = smoke.add_mutually_exclusive_group()
    mode.add_argument("--safe-mode", dest="mode", action="store_const", const="safe",
                      help="enforce the memory budget (the default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="report resources without enforcing the budget")
    smoke.set_defaults(mode="safe")
    smoke.add_argument("--memory-budget-mib", type=positive(float), default=None,
                       metavar="MIB", help="total RSS budget of the lab (default 2048)")
    smoke.add_argument("--boot-timeout", type=positive(float), default=60.0,
                       metavar="SECONDS", help="how long boot may take to all healthy")
    smoke.add_argument("--report", metavar="DIR", type=Path, default=None,
                       help="report dir (default: .opsconsole/reports/<time>-smoke)")
    smoke.add_argument("--json", action="store_true", help="print the summary as JSON")
    smoke.add_argument("--strict", action="store_true",
                       help="any unknown check or phase fails the run (for CI)")
    smoke.set_defaults(func=cmd_smoke)

    heal = sub.add_parser("heal", parents=[common], help="heal every open fault in the ledger")
    heal.add_argument("--json", action="store_true", help="print the faults healed as JSON")
    heal.set_defaults(func=cmd_heal)

    ver = sub.add_parser("verify", help="check a signed transcript and its journal")
    ver.add_argument("file", type=Path, metavar="TRANSCRIPT")
    ver.add_argument("--expect-key", default=None, help="require this public key (base64)")
    ver.add_argument("--print-key", action="store_true", help="print the signer's public key")
    ver.add_argument("--json", action="store_true",
                     help="print the verdict, the reason and the signer's key as JSON")
    ver.set_defaults(func=cmd_verify)

    rep = sub.add_parser("replay", help="play a run's journal back in the console")
    rep.add_argument("journal", type=Path)
    rep.add_argument("--speed", type=float, default=1.0, help="playback speed multiplier")
    rep.set_defaults(func=cmd_replay)

    vault = sub.add_parser("vault", help="the Vault/OpenBao cluster")
    vault_sub = vault.add_subparsers(dest="vault_command", metavar="ACTION", required=True)
    vh = vault_sub.add_parser("health", parents=[common],
                              help="health of every node; exit 1 if any is sealed or down")
    vh.add_argument("--json", action="store_true", help="print every node's health as JSON")
    vh.set_defaults(func=cmd_vault_health)

    nats_cmd = sub.add_parser("nats", help="the NATS cluster and its leaf servers")
    nats_sub = nats_cmd.add_subparsers(dest="nats_command", metavar="ACTION", required=True)
    nh = nats_sub.add_parser("health", parents=[common],
                             help="every node and leaf, with the inventory's credentials; "
                                  "exit 1 if any is down or refuses them")
    nh.add_argument("--json", action="store_true", help="print every node's health as JSON")
    nh.set_defaults(func=cmd_nats_health)

    cfg = sub.add_parser("config", help="inventory files")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    chk = cfg_sub.add_parser("check", help="validate a config file")
    chk.add_argument("file", type=Path)
    chk.add_argument("--json", action="store_true", help="print the verdict and problems as JSON")
    chk.set_defaults(func=cmd_config_check)

    info = sub.add_parser("info", parents=[common],
                          help="config search path, state/ledger/key/lab dirs, versions")
    info.add_argument("--json", action="store_true", help="print it as JSON")
    info.set_defaults(func=cmd_info)

    comp = sub.add_parser("completion", help="print a shell completion script",
                          description="Print a completion script, e.g. "
                          "`opsconsole completion bash > ~/.local/share/bash-completion/"
                          "completions/opsconsole`.")
    comp.add_argument("shell", choices=SHELLS, metavar="SHELL", help=" | ".join(SHELLS))
    comp.set_defaults(func=cmd_completion)
    _accept_read_only(parser)
    return parser


READ_ONLY_HELP = ("change nothing on the target: refuse faults and every mutating scenario "
                  "step (reported unknown: read-only); as read_only = true in the config")


def _accept_read_only(parser: argparse.ArgumentParser) -> None:
    """Every command takes ``--read-only`` after its name too (SUPPRESS keeps a value given
    before it)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                _accept_read_only(sub)
    if "--read-only" not in parser._option_string_actions:
        parser.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                            help=READ_ONLY_HELP)


def _serve_metrics(port: int) -> None:
    from .systems.vault import request_metrics as requests

    try:
        requests.serve(port)
    except OSError as exc:
        raise UserError(f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}: "
                        f"{exc.strerror or exc}", exit_code=2) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    for problem in system_registry.problems():  # a broken plugin: one line, never fatal
        print(f"opsconsole: warning: {problem}", file=sys.stderr)
    from .report.redact import Redactor, install_log_redaction

    redact = Redactor()  # every secret this process resolves, as it resolves them
    install_log_redaction(redact)
    try:
        from .settings import settings  # here, not at the top: keeps `--help` fast

        settings()  # a bad OPSCONSOLE_* value: one line and exit 2 before anything starts
        if getattr(args, "metrics_port", None):
            _serve_metrics(args.metrics_port)
        return func(args)
    except ConfigError as exc:  # an unreadable or invalid inventory: could not run
        for line in exc.problems:
            print(redact.text(line), file=sys.stderr)
        return 2
    except UserError as exc:
        print(redact.text(f"opsconsole: {exc}"), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("opsconsole: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
