"""The console against a deployment configured by hand (tests/foreign/conftest.py): TLS from
a private CA, password users, a leaf on a ``.creds`` file, OpenBao unsealed with Shamir keys.

Every command reads the inventory (secrets by reference) or the vault CLI's environment;
each negative control breaks one thing (the CA, a password, the creds) and sees the node
``unreachable: <cause>`` in one line, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from opsconsole.config import load_config
from opsconsole.session import ConsoleSession

from ..helpers import async_wait_until, run_cli
from .conftest import Foreign, secret_file, write_inventory, write_jwt_inventory


def cli(foreign: Foreign, *args: str, env: dict[str, str] | None = None):
    done = run_cli(*args, env={**foreign.env, **(env or {})})
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def health_json(foreign: Foreign, what: str, inventory: Path) -> tuple[int, dict]:
    done = cli(foreign, what, "health", "--config", str(inventory), "--json")
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def _leader(foreign: Foreign) -> str:
    """The raft leader as OpenBao itself reports it (sys/leader on the first node)."""
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(foreign.pki.ca))
    with urllib.request.urlopen(f"{foreign.bao.addr(0)}/v1/sys/leader", context=ctx,
                                timeout=5) as r:
        leader_addr = json.load(r)["leader_address"]
    return f"b{[foreign.bao.addr(i) for i in range(3)].index(leader_addr) + 1}"


# ------------------------------------------------------------------------- healthy


def test_vault_health_over_tls_with_the_inventory(foreign: Foreign) -> None:
    code, doc = health_json(foreign, "vault", foreign.inventory)
    assert code == 0 and doc["healthy"], doc
    roles = {n["name"]: n["role"] for n in doc["nodes"]}
    assert roles == {n: "leader" if n == _leader(foreign) else "standby"
                     for n in ("b1", "b2", "b3")}


def test_vault_health_from_the_vault_cli_environment_alone(foreign: Foreign) -> None:
    env = {"VAULT_ADDR": foreign.bao.addr(0), "VAULT_CACERT": str(foreign.pki.ca),
           "VAULT_TOKEN": foreign.bao.token_file.read_text().strip()}
    done = cli(foreign, "vault", "health", "--json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["target"] == "environment"
    [node] = doc["nodes"]
    assert node["api_addr"] == foreign.bao.addr(0) and node["health"] == "healthy"
    assert node["role"] == ("leader" if _leader(foreign) == "b1" else "standby")
    assert env["VAULT_TOKEN"] not in done.stdout + done.stderr
    # negative control: the same, trusting another CA
    done = cli(foreign, "vault", "health", env={**env, "VAULT_CACERT":
                                                str(foreign.pki.other_ca)})
    assert done.returncode == 1
    assert "unreachable: TLS certificate not trusted" in done.stdout


def test_nats_health_password_cluster_and_its_leaf(foreign: Foreign) -> None:
    code, doc = health_json(foreign, "nats", foreign.inventory)
    assert code == 0, doc
    assert {(n["name"], n["kind"], n["health"]) for n in doc["nodes"]} == {
        ("f1", "node", "healthy"), ("f2", "node", "healthy"), ("f3", "node", "healthy"),
        ("f-leaf", "leaf", "healthy")}


def test_nats_health_jwt_hub_with_creds_and_its_creds_leaf(foreign: Foreign) -> None:
    code, doc = health_json(foreign, "nats", foreign.jwt_inventory)
    assert code == 0, doc
    rows = {n["name"]: n for n in doc["nodes"]}
    assert rows["j1"]["health"] == "healthy" and rows["j-leaf"]["health"] == "healthy"
    assert rows["j-leaf"]["role"] == "leaf of j1"


# ------------------------------------------------------------------ broken inputs


def _one_line_cause(foreign: Foreign, what: str, inventory: Path, node: str) -> str:
    """The node's row says unreachable with a cause; the text output names it in a line."""
    code, doc = health_json(foreign, what, inventory)
    assert code == 1, doc
    health = {n["name"]: n["health"] for n in doc["nodes"]}[node]
    assert health.startswith("unreachable: "), health
    text = cli(foreign, what, "health", "--config", str(inventory))
    assert text.returncode == 1
    assert any(node in line and "unreachable:" in line for line in text.stdout.splitlines())
    return health


def test_a_bad_ca_is_named_for_nats_and_vault(foreign: Foreign, tmp_path: Path) -> None:
    bad = write_inventory(tmp_path / "bad-ca.toml", foreign.pki, foreign.nats, foreign.bao,
                          ca=foreign.pki.other_ca)
    for what, node in (("nats", "f1"), ("vault", "b1")):
        cause = _one_line_cause(foreign, what, bad, node)
        assert cause.startswith("unreachable: TLS certificate not trusted"), cause
    missing = write_inventory(tmp_path / "no-ca.toml", foreign.pki, foreign.nats, foreign.bao,
                              ca=tmp_path / "nope.pem")
    cause = _one_line_cause(foreign, "vault", missing, "b2")
    assert "cannot load ca_cert" in cause and "nope.pem" in cause


def test_a_wrong_password_is_an_authorization_violation(foreign: Foreign,
                                                        tmp_path: Path) -> None:
    wrong = secret_file(tmp_path / "wrong.password", "not-the-password")
    bad = write_inventory(tmp_path / "wrong-pw.toml", foreign.pki, foreign.nats, foreign.bao,
                          password_file=wrong)
    cause = _one_line_cause(foreign, "nats", bad, "f2")
    assert cause == "unreachable: authorization violation (wrong or refused credentials)"
    assert "not-the-password" not in cli(foreign, "nats", "health", "--config",
                                         str(bad)).stdout


def test_expired_and_missing_creds_are_named(foreign: Foreign, tmp_path: Path) -> None:
    expired = write_jwt_inventory(tmp_path / "expired.toml", foreign.pki, foreign.jwt,
                                  creds=foreign.jwt.expired_creds)
    cause = _one_line_cause(foreign, "nats", expired, "j1")
    assert re.search(r"credentials_file .*expired\.creds: the user JWT expired at ", cause)
    missing = write_jwt_inventory(tmp_path / "missing.toml", foreign.pki, foreign.jwt,
                                  creds=tmp_path / "gone.creds")
    cause = _one_line_cause(foreign, "nats", missing, "j1")
    assert "cannot read credentials_file" in cause and "gone.creds" in cause


# ----------------------------------------------------------------- smoke and packs


def test_smoke_passes_every_phase_that_applies(foreign: Foreign, tmp_path: Path) -> None:
    done = cli(foreign, "smoke", "--config", str(foreign.inventory), "--json",
               "--report", str(tmp_path / "smoke"))
    doc = json.loads(done.stdout)
    assert done.returncode == 0 and not doc["failures"], json.dumps(doc, indent=1)[:3000]
    transcript = json.loads(Path(doc["transcript"]).read_text())
    statuses = {p["id"]: p["status"] for p in transcript["phases"]}
    # the phases this deployment offers pass; the rest (no provisioner, no previews stack,
    # no lab processes) are unknown with their reason, never pass
    assert {k: v for k, v in statuses.items() if v == "pass"}.keys() == {
        "smoke.config", "smoke.boot", "smoke.health", "smoke.auth", "smoke.security"}
    assert set(statuses.values()) == {"pass", "unknown"}, statuses
    assert all("no " in u or "needs" in u for u in doc["unknowns"]), doc["unknowns"]


def test_vault_ha_health_passes_and_failover_is_unknown(foreign: Foreign,
                                                        tmp_path: Path) -> None:
    done = cli(foreign, "run", "vault-ha.health", "--config", str(foreign.inventory),
               "--json", "--report", str(tmp_path / "health"))
    doc = json.loads(done.stdout)
    assert done.returncode == 0 and doc[0]["status"] == "pass", doc
    done = cli(foreign, "run", "vault-ha.failover", "--config", str(foreign.inventory),
               "--json", "--report", str(tmp_path / "failover"))
    [result] = json.loads(done.stdout)
    assert result["status"] == "unknown", result
    assert "no way to stop a Vault node is configured" in result["reason"]
    assert done.returncode == 0  # unknown is not a failure (only --strict makes it one)


async def test_metrics_alerts_is_unknown_where_no_metrics_are_served(foreign: Foreign,
                                                                    tmp_path: Path) -> None:
    """This OpenBao has no telemetry stanza: the alert scenario's first check, run against
    it, is unknown with the reason (the lab, which serves metrics, passes it: tests/lab).
    Run in process: the scenario as a whole needs the lab (it heals a seal by restart), its
    metrics check does not."""
    from opsconsole.faults.ledger import FaultLedger
    from opsconsole.scenarios.engine import run_scenario
    from opsconsole.systems.vault.packs.vault_ha_alerts import MetricsAlerts

    session = ConsoleSession(load_config(foreign.inventory), canaries=False,
                             ledger=FaultLedger(tmp_path / "ledger.jsonl"))
    await session.start()
    try:
        await async_wait_until(lambda: session.state.vault.leader is not None, 30,
                               "a leader in the console state")
        result = await run_scenario(MetricsAlerts(), session, session.faults, "foreign")
    finally:
        await session.stop()
    assert result.status == "unknown", result
    [served] = [c for c in result.checks if c.name == "every node serves Prometheus metrics"]
    assert served.status == "unknown" and "metrics not served" in served.evidence["reason"]
    assert {"b1", "b2", "b3"} <= set(served.evidence)


# ------------------------------------------------------------------------- console


async def test_the_console_sees_every_node_healthy_and_the_relay_delivers(
        foreign: Foreign, monkeypatch) -> None:
    for key in [k for k in os.environ if k.startswith(("VAULT_", "NATS_"))]:
        monkeypatch.delenv(key)
    from opsconsole.tui.app import OpsConsoleApp

    inv = load_config(foreign.inventory)
    session = ConsoleSession(inv, canaries=True)
    app = OpsConsoleApp(session, show_clock=False)
    async with app.run_test(size=(160, 48)) as pilot:
        st = session.state

        def all_seen() -> bool:
            nodes, leaves, vault = st.nats.nodes, st.nats.leaves, st.vault.nodes
            return (all(n in nodes and nodes[n].sample.healthy for n in ("f1", "f2", "f3"))
                    and "f-leaf" in leaves and leaves["f-leaf"].sample.healthy
                    and all(n in vault and vault[n].reachable for n in ("b1", "b2", "b3"))
                    and st.vault.leader is not None)

        await async_wait_until(all_seen, 30, "every foreign node healthy in the console")
        assert st.vault.leader == _leader(foreign)

        def delivered() -> bool:
            reports = st.nats.leaves["f-leaf"].canary
            return len(reports) == 2 and all(r.delivered >= 5 for r in reports.values())

        await async_wait_until(delivered, 30, "the relay canary across f-leaf, both ways")
        await pilot.pause()
        assert not st.vault.firing_alerts, st.vault.firing_alerts
        assert all(r.lost == 0 for r in st.nats.leaves["f-leaf"].canary.values())
        text = "\n".join(str(w.render()) for w in app.query("*") if hasattr(w, "render"))
        assert "unreachable" not in text
