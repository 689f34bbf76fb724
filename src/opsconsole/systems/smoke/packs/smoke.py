"""The `smoke` pack, phases 1-4: configuration, boot, service health, authentication.

Each phase is a scenario (``smoke.<phase>``), so it runs on the same engine, shows live
in the console and lands in the same journal and reports; ``opsconsole smoke`` adds the
signed boot transcript on top (:mod:`opsconsole.smoke`). Checks are pass / fail / warn /
unknown: a warn is worth reading (plaintext off loopback) but does not fail the run; what
the inventory does not configure is unknown with the reason (``--strict`` fails on it).
Phases 5-9 live in :mod:`.smoke_flow` and :mod:`.smoke_host`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any

import aiohttp
import nats
from pydantic import BaseModel, ValidationError

from ....config import ConfigError, Inventory, SecretRef, check_config
from ....scenarios.engine import Outcome, Run, Scenario, outcome
from ....targets.aws import aws_session
from ...vault.checks import leader_addr, vault_request, vault_token

# Secret-looking values that must never sit in a config file.
SECRET_PATTERNS = {
    "private key block": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "Vault token": re.compile(r"\b(hvs|hvb|s)\.[A-Za-z0-9]{24,}\b"),
    "NATS user seed": re.compile(r"\bSU[A-Z2-7]{56}\b"),
}


class SmokePhase(Scenario):
    needs_lab = False  # every phase also checks a configured deployment
    mutates = ()  # phases 1-4, 8 and 9 only observe (control, provisioning, workflow change)


def _secret_refs(obj: Any, path: str = "") -> list[tuple[str, SecretRef]]:
    """Every SecretRef in the inventory, with its key path (values never read here)."""
    if isinstance(obj, SecretRef):
        return [(path, obj)]
    out: list[tuple[str, SecretRef]] = []
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            out += _secret_refs(getattr(obj, name), f"{path}.{name}" if path else name)
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            out += _secret_refs(item, f"{path}[{i}]")
    return out


def _ref_text(ref: SecretRef) -> str:
    return f"env {ref.env}" if ref.env else f"file {ref.file}"


class Config(SmokePhase):
    id = "smoke.config"
    title = "configuration: valid, secrets resolvable by reference, none inline, binaries"

    async def method(self, run: Run) -> None:
        inv = run.session.inventory
        source = str(inv.source) if inv.source else "built-in lab defaults"
        problems = config_problems(inv)
        await run.record("config valid", outcome(not problems, file=source, target=inv.name,
                                                 problems=problems))
        refs = _secret_refs(run.inventory)
        problems: dict[str, str] = {}
        for path, ref in refs:
            try:
                ref.resolve()
            except ConfigError as exc:
                problems[path] = "; ".join(exc.problems)
        await run.record("secrets resolvable by reference (values never shown)", outcome(
            not problems, references={p: _ref_text(r) for p, r in refs}, unresolved=problems))
        text = inv.source.read_text() if inv.source and inv.source.exists() else ""
        found = sorted(name for name, rx in SECRET_PATTERNS.items() if rx.search(text))
        await run.record("no inline secrets in the config", outcome(
            not found, file=source, secret_like_values=found))
        if run.session.lab is None:  # a deployment's servers run elsewhere: nothing to find
            run.step("no lab: no local server binaries to check")
        else:
            await run.record("required binaries present", await _binaries(run))


def config_problems(inv: Inventory) -> list[str]:
    """The inventory validated again now: its file as it is on disk (it may have changed
    since the console loaded it), or the built-in lab defaults it was made from."""
    if inv.source is not None:
        return check_config(inv.source)
    try:
        Inventory.model_validate(inv.model_dump())
    except ValidationError as exc:
        return [f"built-in lab defaults: {e['loc']}: {e['msg']}" for e in exc.errors()]
    return []


async def _binaries(run: Run) -> Outcome:
    """The lab's server binaries (and git, which the sessions stack commits with)."""
    import shutil

    found: dict[str, str] = {}
    missing: list[str] = []
    for name in ("nats-server", "bao", "moto_server"):
        try:
            found[name] = run.lab.binary(name)
        except Exception as exc:  # UserError / FileNotFoundError: the reason is the evidence
            missing.append(f"{name}: {exc}")
    git = shutil.which("git")
    if git:
        found["git"] = git
    else:
        missing.append("git: not on PATH")
    return outcome(not missing, found=found, missing=missing)


def _all_healthy(run: Run) -> tuple[bool, dict[str, Any]]:
    st = run.state
    inv = run.inventory
    nats_names = [n.name for c in inv.nats for n in c.nodes]
    vault_names = [n.name for n in inv.vault.nodes] if inv.vault else []
    nats_ok = {n: bool(st.nats.nodes.get(n) and st.nats.nodes[n].sample.healthy)
               for n in nats_names}
    leaf_ok = {lf.name: bool(st.nats.leaves.get(lf.name) and st.nats.leaves[lf.name].sample.healthy)
               for lf in inv.leaves}
    vault_ok = {n: bool(st.vault.nodes.get(n) and st.vault.nodes[n].reachable
                        and st.vault.nodes[n].sealed is False) for n in vault_names}
    ok = all(nats_ok.values()) and all(leaf_ok.values()) and all(vault_ok.values()) and (
        not vault_names or st.vault.leader is not None)
    return ok, {"nats": nats_ok, "leaves": leaf_ok, "vault": vault_ok,
                "vault_leader": st.vault.leader}


class Boot(SmokePhase):
    id = "smoke.boot"
    title = "boot: the lab up (or the configured targets reachable), time to all healthy"
    healthy_within_s = 90.0

    async def method(self, run: Run) -> None:
        if run.session.lab_error:
            await run.record("lab up", outcome(False, error=run.session.lab_error))
            return
        with contextlib.suppress(Exception):
            await run.wait_until("every node healthy", lambda: _all_healthy(run)[0],
                                 self.healthy_within_s)
        ok, evidence = _all_healthy(run)
        took = time.monotonic() - run.session.started_mono
        if ok:
            run.metric("time_to_healthy_s", took, "s")
        what = "lab up and every node healthy" if run.session.lab is not None \
            else "every configured target healthy"
        await run.record(what, outcome(ok, seconds=round(took, 2), **evidence))


class ServiceHealth(SmokePhase):
    id = "smoke.health"
    title = "service health: NATS, Vault, AWS endpoint, SSH hosts, reference services"

    async def method(self, run: Run) -> None:
        _, ev = _all_healthy(run)
        inv = run.inventory
        if inv.nats:
            await run.record("NATS: every node healthy, every leaf connected", outcome(
                all(ev["nats"].values()) and all(ev["leaves"].values()),
                nodes=ev["nats"], leaves=ev["leaves"]))
        else:
            await run.record("NATS: every node healthy, every leaf connected",
                             ("unknown", {"reason": "no [[nats]] in the inventory"}))
        if inv.vault:
            await run.record("Vault: every node unsealed, one leader", outcome(
                all(ev["vault"].values()) and ev["vault_leader"] is not None,
                nodes=ev["vault"], leader=ev["vault_leader"]))
        else:
            await run.record("Vault: every node unsealed, one leader",
                             ("unknown", {"reason": "no [vault] in the inventory"}))
        await run.record("AWS endpoint answers", await _aws(run, "ec2"))
        await run.record("SSH hosts: reachable, every host check passes", await _ssh(run))
        await run.record("reference services answer", await _services(run))


async def _aws(run: Run, what: str) -> Outcome:
    aws = run.inventory.aws
    if aws is None:
        return "unknown", {"reason": "no [aws] in the inventory"}
    session = aws_session(aws, run.session.aws_credentials)
    started = time.monotonic()
    try:
        if what == "ec2":
            async with session.client("ec2", endpoint_url=aws.endpoint_url) as ec2:
                regions = (await ec2.describe_regions())["Regions"]
            return outcome(bool(regions), endpoint=aws.endpoint_url or "AWS",
                           seconds=round(time.monotonic() - started, 3))
        async with session.client("sts", endpoint_url=aws.endpoint_url) as sts:
            ident = await sts.get_caller_identity()
        return outcome(bool(ident.get("Account")), account=ident.get("Account"),
                       arn=ident.get("Arn"))
    except Exception as exc:  # botocore raises many kinds; the reason is the evidence
        return outcome(False, endpoint=aws.endpoint_url or "AWS",
                       error=f"{type(exc).__name__}: {str(exc)[:200]}")


async def _ssh(run: Run) -> Outcome:
    cfg = run.inventory.ssh
    if not cfg.hosts:
        return "unknown", {"reason": "no [[ssh.hosts]] in the inventory: nothing to check"}
    try:
        from ...ssh.checks import check_hosts
    except ImportError:
        return "unknown", {"note": "SSH host checks are not available in this build"}
    reports = await check_hosts(cfg)
    evidence = {r.host: r.summary() for r in reports}
    return outcome(all(r.ok for r in reports), **evidence)


async def _services(run: Run) -> Outcome:
    urls: dict[str, str] = {}
    if run.inventory.provisioner is not None:
        urls["provisioning"] = str(run.inventory.provisioner.base_url).rstrip("/") + "/healthz"
    sessions = getattr(run.inventory, "previews", None) or getattr(run.inventory, "sessions",
                                                                   None)
    if sessions is not None and getattr(sessions, "base_url", None):
        urls["sessions router"] = str(sessions.base_url).rstrip("/") + "/api/health"
    if not urls:
        return "unknown", {"reason": "no reference services in the inventory"}
    result: dict[str, Any] = {}
    for name, url in urls.items():
        try:
            async with run.http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
                result[name] = r.status
        except Exception as exc:
            result[name] = f"{type(exc).__name__}: {exc}"
    return outcome(all(v == 200 for v in result.values()), **result)


class Authentication(SmokePhase):
    id = "smoke.auth"
    title = "authentication: Vault token and policies, NATS permissions, AWS identity"

    async def method(self, run: Run) -> None:
        await run.record("Vault token valid with the expected policies", await _vault_token(run))
        await run.record("NATS permissions enforced: a leaf user cannot read another "
                         "user's subjects", await leaf_isolation(run))
        await run.record("AWS identity", await _aws(run, "sts"))


async def _vault_token(run: Run) -> Outcome:
    vault = run.inventory.vault
    if vault is None:
        return "unknown", {"reason": "no [vault] in the inventory"}
    if vault_token(run) is None:
        return outcome(False, error="[vault] has no token reference")
    addr = leader_addr(run) or str(vault.nodes[0].api_addr)
    status, body = await vault_request(run, addr, "GET", "auth/token/lookup-self")
    policies = sorted(body.get("data", {}).get("policies", []))
    expected = sorted(vault.expected_policies) if vault.expected_policies else None
    ok = status == 200 and (expected is None or set(expected) <= set(policies))
    ttl = body.get("data", {}).get("ttl")
    return outcome(ok, status=status, policies=policies, expected=expected,
                   ttl_s=ttl, renewable=body.get("data", {}).get("renewable"))


async def leaf_isolation(run: Run) -> Outcome:
    """Traffic for user B reaches B's leaf; once A's own message reaches A's leaf,
    nothing of B's was seen there; and A cannot inject into B's space."""
    leaves = run.inventory.leaves
    users = {lf.user: lf for lf in leaves}
    if len(users) < 2 or not run.inventory.nats:
        return "unknown", {"reason": "needs two leaves of different users in the inventory"}
    a, b = list(users.values())[:2]
    cluster = run.inventory.nats[0]
    conns = [await ep.connect(connect_timeout=3, max_reconnect_attempts=1)
             for ep in (cluster.endpoint(cluster.nodes[0]), a.endpoint(), b.endpoint())]
    central, leaf_a, leaf_b = conns
    try:
        seen_a: list[str] = []
        seen_b: list[str] = []
        seen_central: list[str] = []
        for nc, seen in ((leaf_a, seen_a), (leaf_b, seen_b), (central, seen_central)):
            async def collect(msg: Any, into: list[str] = seen) -> None:
                into.append(msg.subject)

            await nc.subscribe("OwnerSpace.>", cb=collect)
            await nc.flush()
        reached_b = await _publish_until(central, f"OwnerSpace.{b.user}.smoke", seen_b)
        reached_a = await _publish_until(central, f"OwnerSpace.{a.user}.smoke", seen_a)
        leaked = [s for s in seen_a if s.startswith(f"OwnerSpace.{b.user}.")]
        await leaf_a.publish(f"OwnerSpace.{b.user}.injected", b"x")
        await _publish_until(leaf_a, f"OwnerSpace.{a.user}.fence", seen_central)
        injected = [s for s in seen_central if s == f"OwnerSpace.{b.user}.injected"]
        return outcome(reached_a and reached_b and not leaked and not injected,
                       user=a.user, other=b.user, other_traffic_seen=len(leaked),
                       injected_into_other=len(injected), delivered_own=reached_a)
    finally:
        for nc in conns:
            await nc.close()


async def _publish_until(nc: nats.NATS, subject: str, seen: list[str],
                         timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await nc.publish(subject, b"smoke")
        await nc.flush()
        for _ in range(5):
            if subject in seen:
                return True
            await asyncio.sleep(0.04)
    return False


SCENARIOS_1_4: list[type[Scenario]] = [Config, Boot, ServiceHealth, Authentication]

__all__ = ["SCENARIOS_1_4", "SmokePhase", "leaf_isolation"]
