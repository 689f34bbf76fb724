"""SSH host checks: every configured host in parallel, one connection per host.

Each check is a small POSIX ``sh`` script run on its own channel of the host's single
connection (at most :data:`PER_HOST_CONCURRENCY` at a time), under a timeout enforced on
both sides: GNU/busybox ``timeout`` on the host when it has one, and the client, which
closes the channel. The host only prints facts (``key=value`` lines, raw ``df``/meminfo
output); the verdict is computed here, so thresholds and version rules are the same
everywhere and testable without a host.

Every value from the config reaches the shell through :func:`shlex.quote` (the config
models already reject control characters and shell-unfriendly names). Failures of any
kind - unreachable host, refused host key, lost connection, timeout, odd output - become a
``fail`` result with the reason; :func:`check_hosts` does not raise for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncssh

from ...errors import UserError
from .client import ConnectionPool, find_host
from .config import (
    DiskCheck,
    FileCheck,
    MemoryCheck,
    PackageCheck,
    PortCheck,
    ProcessCheck,
    ServiceCheck,
    SshCheck,
    SshConfig,
    SshHost,
)

Status = Literal["pass", "fail", "warn"]
Evidence = dict[str, Any]

#: channels run at once on one host's connection (OpenSSH allows 10 sessions by default)
PER_HOST_CONCURRENCY = 4
#: every script carries this word; processes whose command line has it are ours and are
#: never counted by process/service checks (the pattern is in our own ``sh -c`` argv)
MARKER = "opsconsole-check"
_EXCERPT = 300
_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CheckResult:
    """One check on one host. ``evidence["detail"]`` is always a one-line summary."""

    host: str
    name: str  # "reachable", "service:nats-server", "port:4222", "file:/etc/x", ...
    kind: str  # "reachable" or the check's kind
    status: Status
    evidence: Evidence
    duration_s: float

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "name": self.name, "kind": self.kind,
                "status": self.status, "evidence": self.evidence,
                "duration_s": round(self.duration_s, 3)}


@dataclass
class HostReport:
    host: str  # the inventory name
    address: str  # "host:port" as configured
    via: list[str]  # jump hosts, nearest first; [] when direct
    checks: list[CheckResult] = field(default_factory=list)  # "reachable" first
    duration_s: float = 0.0

    @property
    def reachable(self) -> bool:
        return bool(self.checks) and self.checks[0].status == "pass"

    @property
    def status(self) -> Status:
        """The worst status of the host's checks."""
        worst: Status = "pass"
        for check in self.checks:
            if _RANK[check.status] > _RANK[worst]:
                worst = check.status
        return worst

    @property
    def ok(self) -> bool:
        """No check failed (``warn`` is not a failure, as in the scenario engine)."""
        return self.status != "fail"

    def summary(self) -> dict[str, Any]:
        """Compact JSON evidence: ``{"status", "address", "via", "checks": {name: "status:
        detail"}}``."""
        return {"status": self.status, "address": self.address, "via": self.via,
                "checks": {c.name: f"{c.status}: {c.evidence.get('detail', '')}"
                           for c in self.checks}}

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "address": self.address, "via": self.via,
                "status": self.status, "reachable": self.reachable,
                "duration_s": round(self.duration_s, 3),
                "checks": [c.as_json() for c in self.checks]}


def check_name(check: SshCheck) -> str:
    """A stable, readable id for a check: ``<kind>:<subject>``."""
    match check:
        case ServiceCheck(name=name) | PackageCheck(name=name):
            return f"{check.kind}:{name}"
        case ProcessCheck(pattern=pattern):
            return f"process:{pattern}"
        case PortCheck(port=port):
            return f"port:{port}"
        case FileCheck(path=path) | DiskCheck(path=path):
            return f"{check.kind}:{path}"
        case _:
            return check.kind


# --------------------------------------------------------------------------- entry point

ResultCallback = Callable[[CheckResult], None]


async def check_hosts(cfg: SshConfig, timeout: float = 10, *,
                      on_result: ResultCallback | None = None) -> list[HostReport]:
    """Check the jump host (if any) and every host of ``cfg``, all in parallel.

    ``timeout`` bounds each connection attempt (per hop) and each check (unless the check
    sets its own). ``on_result`` is called with each result as soon as it is known, for live
    display. Reports come back in config order, jump host first.
    """
    targets = ([cfg.jump_host] if cfg.jump_host is not None else []) + list(cfg.hosts)
    async with ConnectionPool(cfg, connect_timeout=timeout) as pool:
        return list(await asyncio.gather(
            *(_check_host(pool, cfg, host, timeout, on_result) for host in targets)))


def _via(cfg: SshConfig, host: SshHost) -> list[str]:
    hops: list[str] = []
    hop = host.tunnel
    while hop and hop not in hops and hop != host.name:
        hops.append(hop)
        try:
            hop = find_host(cfg, hop).tunnel
        except UserError:
            break
    return hops


async def _check_host(pool: ConnectionPool, cfg: SshConfig, host: SshHost, timeout: float,
                      on_result: ResultCallback | None) -> HostReport:
    started = time.monotonic()
    where = f"{host.host}:{host.port}" if host.port else host.host
    report = HostReport(host.name, where, _via(cfg, host))

    def record(result: CheckResult) -> CheckResult:
        if on_result is not None:
            on_result(result)
        return result

    conn: asyncssh.SSHClientConnection | None = None
    try:
        conn = await pool.get(host.name)
    except UserError as exc:
        reason = str(exc)
    except Exception as exc:  # a bug or an odd library error must not hide the other hosts
        reason = f"ssh {host.name}: {type(exc).__name__}: {str(exc)[:_EXCERPT]}"
    connected = time.monotonic()
    if conn is None:
        report.checks.append(record(CheckResult(
            host.name, "reachable", "reachable", "fail",
            {"detail": reason, "address": report.address, "via": report.via},
            connected - started)))
        for check in host.checks:
            report.checks.append(record(CheckResult(
                host.name, check_name(check), check.kind, "fail",
                {"detail": f"not run: host unreachable: {reason}"}, 0.0)))
        report.duration_s = time.monotonic() - started
        return report

    hops = f" via {' -> '.join(reversed(report.via))}" if report.via else ""
    report.checks.append(record(CheckResult(
        host.name, "reachable", "reachable", "pass",
        {"detail": f"connected to {report.address}{hops} in {(connected - started) * 1000:.0f} ms",
         "address": report.address, "via": report.via,
         "server_version": str(conn.get_extra_info("server_version") or "")},
        connected - started)))
    limit = asyncio.Semaphore(PER_HOST_CONCURRENCY)

    async def one(check: SshCheck, conn: asyncssh.SSHClientConnection) -> CheckResult:
        async with limit:
            return record(await run_check(conn, host.name, check, timeout))

    report.checks += await asyncio.gather(*(one(c, conn) for c in host.checks))
    report.duration_s = time.monotonic() - started
    return report


async def run_check(conn: asyncssh.SSHClientConnection, host: str, check: SshCheck,
                    timeout: float = 10) -> CheckResult:
    """Run one check on an open connection; never raises (failures are ``fail`` results)."""
    limit = float(check.timeout or timeout)
    started = time.monotonic()
    try:
        rc, out, err = await _exec(conn, _PREAMBLE + _script(check), limit)
        status, evidence = evaluate(check, rc, out, err)
    except _CheckTimeout:
        status, evidence = "fail", {"detail": f"timed out after {math.ceil(limit)}s"}
    except asyncssh.Error as exc:
        status, evidence = "fail", {"detail": f"ssh error: {exc.reason}"}
    except OSError as exc:
        status, evidence = "fail", {"detail": f"ssh error: {exc.strerror or type(exc).__name__}"}
    except Exception as exc:  # a parser bug becomes a failed check, not a traceback
        status, evidence = "fail", {"detail": f"internal error: {type(exc).__name__}: "
                                              f"{str(exc)[:_EXCERPT]}"}
    return CheckResult(host, check_name(check), check.kind, status, evidence,
                       time.monotonic() - started)


# --------------------------------------------------------------------------- remote side


class _CheckTimeout(Exception):
    pass


_PREAMBLE = f"""# {MARKER}
LC_ALL=C; export LC_ALL
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; export PATH
"""

# The login shell may be anything (bash, zsh, fish, tcsh): it only sees ``sh -c '<fixed>'
# <name> '<script>'``. The remote ``timeout`` is used only if it takes GNU-style arguments.
_WRAPPER = ('if timeout -k 1 1 true >/dev/null 2>&1; then exec timeout -k 1 {t} sh -c "$1"; '
            'else exec sh -c "$1"; fi')


def remote_command(script: str, timeout: float) -> str:
    """The command line sent for ``script`` (exposed for tests and debugging)."""
    wrapper = _WRAPPER.format(t=max(1, math.ceil(timeout)))
    return f"sh -c {shlex.quote(wrapper)} {MARKER} {shlex.quote(script)}"


async def _exec(conn: asyncssh.SSHClientConnection, script: str,
                timeout: float) -> tuple[int, str, str]:
    remote = max(1, math.ceil(timeout))
    client = remote + min(2.0, max(0.5, remote / 2))  # let the host's timeout fire first
    deadline = time.monotonic() + client
    try:
        proc = await asyncio.wait_for(
            conn.create_process(remote_command(script, timeout), encoding="utf-8",
                                errors="replace"),
            client)
    except TimeoutError:
        raise _CheckTimeout from None
    try:
        proc.stdin.write_eof()
        done = await proc.wait(check=False, timeout=max(0.1, deadline - time.monotonic()))
    except asyncssh.TimeoutError:
        raise _CheckTimeout from None
    finally:
        with contextlib.suppress(Exception):
            proc.close()
    rc = done.returncode if done.returncode is not None else -1
    if rc == 124:  # coreutils/busybox timeout on the host
        raise _CheckTimeout
    return rc, str(done.stdout or ""), str(done.stderr or "")


def _q(value: str) -> str:
    return shlex.quote(value)


# Prints "pid=<pid> <comm>" for each process matching ERE $1 (names, or full command lines
# when $2 = 1), skipping our own shells (their argv holds MARKER). pgrep when present, else
# a /proc scan (minimal images have no procps).
_PROCS_FN = r"""
_oc_match() {
  if command -v pgrep >/dev/null 2>&1; then
    if [ "$2" = 1 ]; then pgrep -f -- "$1"; else pgrep -- "$1"; fi
    _rc=$?; [ "$_rc" -le 1 ] || return "$_rc"; return 0
  fi
  for _d in /proc/[0-9]*; do
    if [ "$2" = 1 ]; then _s=$(tr '\000' ' ' < "$_d/cmdline" 2>/dev/null)
    else _s=$(cat "$_d/comm" 2>/dev/null); fi
    [ -n "$_s" ] && printf '%s\n' "$_s" | grep -Eq -- "$1" && echo "${_d#/proc/}"
  done
  return 0
}
_oc_procs() {
  _pids=$(_oc_match "$1" "$2") || { echo "error=pgrep rejected the pattern"; exit 3; }
  for _p in $_pids; do
    [ -d "/proc/$_p" ] || continue
    _c=$(tr '\000' ' ' < "/proc/$_p/cmdline" 2>/dev/null)
    case "$_c" in *@MARKER@*) continue ;; esac
    printf 'pid=%s %s\n' "$_p" "$(cat "/proc/$_p/comm" 2>/dev/null)"
  done
  exit 0
}
""".replace("@MARKER@", MARKER)

_PORT_SCRIPT = r"""
if [ -r /proc/net/tcp ]; then
  echo source=proc
  for _f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$_f" ] || continue
    if command -v awk >/dev/null 2>&1; then awk 'NR > 1 && $4 == "0A" { print $2 }' "$_f"
    else while read -r _sl _l _r _st _rest; do [ "$_st" = 0A ] && echo "$_l"; done < "$_f"; fi
  done
elif command -v ss >/dev/null 2>&1; then echo source=ss; ss -ltn
elif command -v netstat >/dev/null 2>&1; then echo source=netstat; netstat -ltn
else echo source=none
fi
exit 0
"""

_FILE_SCRIPT = r"""
_p=@PATH@
if command -v stat >/dev/null 2>&1; then
  _o=$(stat -L -c 'stat=%a|%F|%U|%G|%s' "$_p" 2>&1) || { printf 'error=%s\n' "$_o"; exit 0; }
else
  _o=$(ls -ldL "$_p" 2>&1) || { printf 'error=%s\n' "$_o"; exit 0; }
  _o="ls=$_o"
fi
printf '%s\n' "$_o"
exit 0
"""

_PACKAGE_SCRIPT = r"""
_n=@NAME@
if command -v dpkg-query >/dev/null 2>&1; then
  echo manager=dpkg
  dpkg-query -W -f='${Status}|${Version}\n' "$_n" 2>&1
elif command -v rpm >/dev/null 2>&1; then
  echo manager=rpm
  rpm -q --qf '%{EPOCH}:%{VERSION}-%{RELEASE}\n' "$_n" 2>&1
else
  echo manager=none
fi
exit 0
"""


def _service_pattern(check: ServiceCheck) -> str:
    if check.process:
        return check.process
    # Process names (comm) are cut at 15 characters by the kernel, as pgrep documents.
    return "^" + _ere_escape(check.name.removesuffix(".service")[:15]) + "$"


def _ere_escape(text: str) -> str:
    return re.sub(r"([\\.\[\](){}*+?|^$])", r"\\\1", text)


def _script(check: SshCheck) -> str:
    match check:
        case ServiceCheck():
            return (_PROCS_FN
                    + "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; "
                    "then\n"
                    f"  printf 'systemd=%s\\n' \"$(systemctl is-active -- {_q(check.name)} "
                    "2>&1 | head -n 1)\"\n  exit 0\nfi\necho systemd=absent\n"
                    f"_oc_procs {_q(_service_pattern(check))} 0\n")
        case ProcessCheck():
            return _PROCS_FN + f"_oc_procs {_q(check.pattern)} {int(check.full)}\n"
        case PortCheck():
            return _PORT_SCRIPT
        case FileCheck():
            return _FILE_SCRIPT.replace("@PATH@", _q(check.path))
        case DiskCheck():
            return f"df -P -k {_q(check.path)}\n"
        case MemoryCheck():
            return "cat /proc/meminfo\n"
        case PackageCheck():
            return _PACKAGE_SCRIPT.replace("@NAME@", _q(check.name))
    raise TypeError(f"unknown check {type(check).__name__}")  # pragma: no cover


# --------------------------------------------------------------------------- verdicts

Outcome = tuple[Status, Evidence]


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


def evaluate(check: SshCheck, rc: int, out: str, err: str) -> Outcome:
    """Turn a check script's exit status and output into (status, evidence)."""
    match check:
        case ServiceCheck():
            return _eval_service(check, rc, out, err)
        case ProcessCheck():
            return _eval_process(check.pattern, rc, out, err)
        case PortCheck():
            return _eval_port(check, out)
        case FileCheck():
            return _eval_file(check, out)
        case DiskCheck():
            return _eval_disk(check, rc, out, err)
        case MemoryCheck():
            return _eval_memory(check, rc, out, err)
        case PackageCheck():
            return _eval_package(check, out)
    raise TypeError(f"unknown check {type(check).__name__}")  # pragma: no cover


def _procs(out: str) -> list[tuple[int, str]]:
    found = []
    for line in out.splitlines():
        m = re.fullmatch(r"pid=(\d+) ?(.*)", line.strip())
        if m:
            found.append((int(m[1]), m[2]))
    return found


def _eval_process(pattern: str, rc: int, out: str, err: str) -> Outcome:
    if rc != 0:
        return "fail", {"detail": f"process lookup failed: "
                                  f"{_excerpt(err or out) or f'exit {rc}'}"}
    procs = _procs(out)
    if not procs:
        return "fail", {"detail": f"no process matches {pattern!r}", "pids": []}
    names = sorted({name for _, name in procs if name})
    return "pass", {"detail": f"{len(procs)} process(es) match {pattern!r}: "
                              f"{', '.join(names[:5]) or '?'}",
                    "pids": [pid for pid, _ in procs][:50], "names": names[:20]}


def _eval_service(check: ServiceCheck, rc: int, out: str, err: str) -> Outcome:
    m = re.search(r"^systemd=(.*)$", out, re.MULTILINE)
    state = m[1].strip() if m else ""
    if state and state != "absent":
        evidence: Evidence = {"init": "systemd", "state": state,
                              "detail": f"systemctl is-active {check.name}: {state}"}
        if state == "active":
            return "pass", evidence
        if state in ("activating", "reloading"):
            return "warn", evidence
        return "fail", evidence
    if state != "absent":
        return "fail", {"detail": f"unexpected output: {_excerpt(out + err) or f'exit {rc}'}"}
    pattern = _service_pattern(check)
    status, evidence = _eval_process(pattern, rc, out, err)
    evidence = {**evidence, "init": "none",
                "detail": f"no systemd; process check: {evidence['detail']}"}
    return status, evidence


def _proc_address(hexaddr: str) -> tuple[str, int]:
    """Decode a /proc/net/tcp{,6} local address (host-order 32-bit words, hex port)."""
    addr, port = hexaddr.split(":")
    raw = bytes.fromhex(addr)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(words)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip), int(port, 16)


def _split_hostport(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.strip("[]").split("%")[0]
    return host or "*", int(port)


def listening(out: str) -> tuple[str, list[tuple[str, int]]]:
    """(source, [(address, port)]) of listening TCP sockets from the port script's output."""
    lines = out.splitlines()
    m = re.fullmatch(r"source=(\w+)", lines[0].strip()) if lines else None
    source = m[1] if m else "unknown"
    found: list[tuple[str, int]] = []
    for line in lines[1:]:
        parts = line.split()
        if not parts:
            continue
        if source == "proc" and re.fullmatch(r"[0-9A-Fa-f]+:[0-9A-Fa-f]{4}", parts[0]):
            found.append(_proc_address(parts[0]))
        elif len(parts) >= 4 and "LISTEN" in (parts[0], parts[-1]):  # ss / netstat -ltn
            hp = _split_hostport(parts[3])
            if hp:
                found.append(hp)
    return source, found


def _eval_port(check: PortCheck, out: str) -> Outcome:
    source, sockets = listening(out)
    if source not in ("proc", "ss", "netstat"):
        return "fail", {"detail": "cannot list listening sockets (no /proc/net/tcp, ss or "
                                  "netstat on the host)"}
    addresses = sorted({f"{addr}:{port}" if ":" not in addr else f"[{addr}]:{port}"
                        for addr, port in sockets if port == check.port})
    if not addresses:
        return "fail", {"detail": f"nothing listens on TCP port {check.port} "
                                  f"({len(sockets)} listening sockets seen via {source})",
                        "source": source, "addresses": []}
    return "pass", {"detail": f"TCP port {check.port} listening on {', '.join(addresses)}",
                    "source": source, "addresses": addresses}


def mode_from_ls(perms: str) -> int:
    """Permission bits (with setuid/setgid/sticky) from an ``ls -l`` string like -rwsr-x---."""
    perms = perms[1:10]
    if len(perms) != 9:
        raise ValueError(f"not an ls mode string: {perms!r}")
    mode = 0
    special = {2: 0o4000, 5: 0o2000, 8: 0o1000}
    for i, ch in enumerate(perms):
        bit = 1 << (8 - i)
        if ch in "rwx":
            mode |= bit
        elif ch in "sst" and i in special:
            mode |= bit | special[i]
        elif ch in "ST" and i in special:
            mode |= special[i]
    return mode


def _eval_file(check: FileCheck, out: str) -> Outcome:
    line = out.strip().splitlines()[0] if out.strip() else ""
    if line.startswith("error="):
        msg = _excerpt(line[len("error="):])
        if "No such file" in msg:
            return "fail", {"detail": f"{check.path} is missing", "error": msg}
        return "fail", {"detail": f"cannot stat {check.path}: {msg}"}
    evidence: Evidence = {}
    if line.startswith("stat="):
        fields = line[len("stat="):].split("|")
        if len(fields) < 5 or not re.fullmatch(r"[0-7]+", fields[0]):
            return "fail", {"detail": f"unexpected stat output: {_excerpt(line)}"}
        mode = int(fields[0], 8)
        evidence = {"type": fields[1], "owner": f"{fields[2]}:{fields[3]}"}
    elif line.startswith("ls="):
        mode = mode_from_ls(line[len("ls="):].split()[0])
    else:
        return "fail", {"detail": f"unexpected output: {_excerpt(out) or '(none)'}"}
    actual = f"{mode & 0o7777:04o}"
    evidence["mode"] = actual
    if check.mode is not None and int(check.mode, 8) != mode & 0o7777:
        return "fail", {**evidence, "expected_mode": check.mode,
                        "detail": f"{check.path} has mode {actual}, expected {check.mode}"}
    what = evidence.get("type", "file")
    return "pass", {**evidence, "detail": f"{check.path} exists ({what}, mode {actual})"}


_DF_LINE = re.compile(r"^(.*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+%|-)\s+(/.*)$")


def _threshold(value: float, minimum: float, warn: float | None, what: str,
               evidence: Evidence) -> Outcome:
    if value < minimum:
        return "fail", {**evidence, "detail": f"{evidence['detail']}: below {minimum:g}% {what}"}
    if warn is not None and value < warn:
        return "warn", {**evidence, "detail": f"{evidence['detail']}: below warn {warn:g}%"}
    return "pass", evidence


def _eval_disk(check: DiskCheck, rc: int, out: str, err: str) -> Outcome:
    for line in reversed(out.splitlines()):
        m = _DF_LINE.match(line.strip())
        if m:
            used, avail = int(m[3]), int(m[4])
            total = used + avail
            free = 100.0 * avail / total if total else 0.0
            evidence: Evidence = {
                "free_percent": round(free, 2), "available_kib": avail,
                "filesystem": m[1], "mount": m[6],
                "detail": f"{check.path}: {free:.1f}% free ({avail / 1048576:.1f} GiB) on {m[6]}",
            }
            return _threshold(free, check.min_free_percent, check.warn_free_percent, "free",
                              evidence)
    return "fail", {"detail": f"df failed for {check.path}: "
                              f"{_excerpt(err or out) or f'exit {rc}'}"}


def _eval_memory(check: MemoryCheck, rc: int, out: str, err: str) -> Outcome:
    info: dict[str, int] = {}
    for line in out.splitlines():
        m = re.match(r"^(\w+):\s+(\d+)", line)
        if m:
            info[m[1]] = int(m[2])
    total = info.get("MemTotal", 0)
    if rc != 0 or not total:
        return "fail", {"detail": f"cannot read /proc/meminfo: "
                                  f"{_excerpt(err or out) or f'exit {rc}'}"}
    if "MemAvailable" in info:
        available, source = info["MemAvailable"], "MemAvailable"
    else:  # kernels before 3.14
        available = sum(info.get(k, 0) for k in ("MemFree", "Buffers", "Cached"))
        source = "MemFree+Buffers+Cached"
    pct = 100.0 * available / total
    evidence: Evidence = {
        "available_percent": round(pct, 2), "available_kib": available, "total_kib": total,
        "source": source,
        "detail": f"{pct:.1f}% memory available ({available / 1048576:.1f} of "
                  f"{total / 1048576:.1f} GiB)",
    }
    return _threshold(pct, check.min_available_percent, check.warn_available_percent,
                      "available", evidence)


_DPKG_INSTALLED = {"installed", "triggers-awaited", "triggers-pending"}
_DPKG_BROKEN = {"half-installed", "unpacked", "half-configured"}


def _eval_package(check: PackageCheck, out: str) -> Outcome:
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    manager = lines[0].removeprefix("manager=") if lines else "none"
    rest = lines[1:]
    if manager == "dpkg":
        states = []
        for line in rest:
            status, sep, version = line.partition("|")
            if sep:
                states.append((status.split()[-1] if status.split() else "", version))
        good = [v for s, v in states if s in _DPKG_INSTALLED and v]
        broken = [(s, v) for s, v in states if s in _DPKG_BROKEN]
        if not good:
            if broken:
                state, version = broken[0]
                return "warn", {"manager": "dpkg", "version": version, "state": state,
                                "detail": f"{check.name} {version} is {state} (dpkg)"}
            return "fail", {"manager": "dpkg", "detail": f"{check.name} is not installed "
                            f"(dpkg: {_excerpt(' '.join(rest)) or 'no such package'})"}
        version = max(good, key=_DebVersion)
        cmp = None if check.min_version is None else deb_compare(version, check.min_version)
    elif manager == "rpm":
        good = [line for line in rest if re.fullmatch(r"(\(none\)|\d+):\S+-\S+", line)]
        if not good:
            return "fail", {"manager": "rpm", "detail": f"{check.name} is not installed "
                            f"(rpm: {_excerpt(' '.join(rest)) or 'no such package'})"}
        best = max(good, key=_RpmVersion)
        version = best.removeprefix("(none):")
        cmp = None if check.min_version is None else rpm_compare(best, check.min_version)
    else:
        return "fail", {"detail": "no package manager found (neither dpkg-query nor rpm)"}
    evidence: Evidence = {"manager": manager, "version": version}
    if cmp is not None and cmp < 0:
        return "fail", {**evidence, "min_version": check.min_version,
                        "detail": f"{check.name} {version} ({manager}) is older than "
                                  f"{check.min_version}"}
    suffix = f" >= {check.min_version}" if check.min_version else ""
    return "pass", {**evidence, "detail": f"{check.name} {version} ({manager}){suffix}"}


# --------------------------------------------------------------------------- versions


def _deb_order(ch: str) -> int:
    if ch == "~":
        return -1
    if ch.isascii() and ch.isalpha():
        return ord(ch)
    return ord(ch) + 256


def _isdigit(text: str, i: int) -> bool:
    return i < len(text) and text[i].isascii() and text[i].isdigit()


def _deb_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: letters sort before non-letters, '~' before everything, even the
    end of the string; digit runs compare numerically."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not _isdigit(a, i)) or (j < len(b) and not _isdigit(b, j)):
            ac = _deb_order(a[i]) if i < len(a) and not _isdigit(a, i) else 0
            bc = _deb_order(b[j]) if j < len(b) and not _isdigit(b, j) else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i, j = i + 1, j + 1
        si = i
        while _isdigit(a, i):
            i += 1
        sj = j
        while _isdigit(b, j):
            j += 1
        na, nb = int(a[si:i] or "0"), int(b[sj:j] or "0")
        if na != nb:
            return -1 if na < nb else 1
    return 0


def _deb_split(version: str) -> tuple[int, str, str]:
    epoch, sep, rest = version.partition(":")
    if not sep:
        epoch, rest = "0", version
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        upstream, revision = rest, ""
    return int(epoch) if epoch.isdigit() else 0, upstream, revision


def deb_compare(a: str, b: str) -> int:
    """-1, 0 or 1 like ``dpkg --compare-versions``."""
    ea, ua, ra = _deb_split(a)
    eb, ub, rb = _deb_split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _deb_part(ua, ub) or _deb_part(ra, rb)


def _isalnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def rpmvercmp(a: str, b: str) -> int:
    """rpm's segment comparison, including '~' (pre-release) and '^' (post-release)."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and not _isalnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < len(b) and not _isalnum(b[j]) and b[j] not in "~^":
            j += 1
        if (i < len(a) and a[i] == "~") or (j < len(b) and b[j] == "~"):
            if i >= len(a) or a[i] != "~":
                return 1
            if j >= len(b) or b[j] != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if (i < len(a) and a[i] == "^") or (j < len(b) and b[j] == "^"):
            if i >= len(a):
                return -1
            if j >= len(b):
                return 1
            if a[i] != "^":
                return 1
            if b[j] != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (i < len(a) and j < len(b)):
            break
        numeric = _isdigit(a, i)
        si, sj = i, j
        if numeric:
            while _isdigit(a, i):
                i += 1
            while _isdigit(b, j):
                j += 1
        else:
            while i < len(a) and a[i].isascii() and a[i].isalpha():
                i += 1
            while j < len(b) and b[j].isascii() and b[j].isalpha():
                j += 1
        sa, sb = a[si:i], b[sj:j]
        if not sb:  # segments of different types: the numeric one is newer
            return 1 if numeric else -1
        if numeric:
            sa, sb = sa.lstrip("0"), sb.lstrip("0")
            if len(sa) != len(sb):
                return 1 if len(sa) > len(sb) else -1
        if sa != sb:
            return 1 if sa > sb else -1
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


def _rpm_split(version: str) -> tuple[int, str, str | None]:
    epoch, sep, rest = version.partition(":")
    if not sep:
        epoch, rest = "0", version
    ver, sep, release = rest.rpartition("-")
    if not sep:
        ver, release = rest, None
    return (int(epoch) if epoch.isdigit() else 0), ver, release


def rpm_compare(installed: str, minimum: str) -> int:
    """Compare ``[epoch:]version[-release]``; a ``minimum`` without release ignores it."""
    ea, va, ra = _rpm_split(installed)
    eb, vb, rb = _rpm_split(minimum)
    if ea != eb:
        return -1 if ea < eb else 1
    return rpmvercmp(va, vb) or (rpmvercmp(ra or "", rb) if rb is not None else 0)


class _DebVersion:
    def __init__(self, version: str) -> None:
        self.version = version

    def __lt__(self, other: _DebVersion) -> bool:
        return deb_compare(self.version, other.version) < 0


class _RpmVersion:
    def __init__(self, version: str) -> None:
        self.version = version

    def __lt__(self, other: _RpmVersion) -> bool:
        return rpm_compare(self.version, other.version) < 0


__all__ = [
    "PER_HOST_CONCURRENCY",
    "CheckResult",
    "HostReport",
    "Status",
    "check_hosts",
    "check_name",
    "deb_compare",
    "evaluate",
    "rpm_compare",
    "run_check",
]
