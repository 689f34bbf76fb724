"""Issue 17, redaction: every secret the inventory references (``*_env`` and ``*_file``
values, a JSON of member tokens, a ``.creds`` JWT and seed, an nkey seed, an SSH private
key, a TLS client key) is planted by a careless scenario in its evidence, its abort reason,
a log line and a one-line error; none of them appears in any report, journal, log line or
printed output, and each was seen redacted."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from opsconsole import scenarios as scenario_registry
from opsconsole.cli import main as cli_main
from opsconsole.config_fields import resolved_secrets
from opsconsole.report.redact import SECRET_FILE_KEYS, Redactor, secret_files, secret_refs
from opsconsole.scenarios.engine import Abort, Run, Scenario, outcome

SECRETS = {
    "nats_password": "nats-pw-6f1c2e9a8b",
    "vault_token": "s.vault-token-5d4c3b2a1f",
    "admin_token": "admin-bearer-9e8d7c6b5a",
    "member_token": "member-bearer-1a2b3c4d5e",
    "nats_member_password": "member-nats-pw-77aa88bb",
    "creds_jwt": "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2lnbmF0dXJl",
    "creds_seed": "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY",
    "nkey_seed": "SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4",
    "ssh_key_line": "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    "tls_key_line": "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVGhpcyBpcyBub3Qg",
}


def _inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("T17_NATS_PASSWORD", SECRETS["nats_password"])
    monkeypatch.setenv("T17_ADMIN_TOKEN", SECRETS["admin_token"])
    files = {
        "vault.token": SECRETS["vault_token"],
        "members.json": json.dumps({"alice": SECRETS["member_token"]}),
        "nats-passwords.json": json.dumps({"alice": SECRETS["nats_member_password"]}),
        "leaf.creds": (f"-----BEGIN NATS USER JWT-----\n{SECRETS['creds_jwt']}\n"
                       "------END NATS USER JWT------\n\n*** IMPORTANT ***\n\n"
                       f"-----BEGIN USER NKEY SEED-----\n{SECRETS['creds_seed']}\n"
                       "------END USER NKEY SEED------\n"),
        "user.nk": SECRETS["nkey_seed"] + "\n",
        "id_ed25519": ("-----BEGIN OPENSSH PRIVATE KEY-----\n" + SECRETS["ssh_key_line"]
                       + "\n-----END OPENSSH PRIVATE KEY-----\n"),
        "client.key": ("-----BEGIN PRIVATE KEY-----\n" + SECRETS["tls_key_line"]
                       + "\n-----END PRIVATE KEY-----\n"),
        "client.pem": "-----BEGIN CERTIFICATE-----\nnot-a-secret\n-----END CERTIFICATE-----\n",
        "control.pem": "-----BEGIN PRIVATE KEY-----\ncontrolkeyline0123456789\n-----END "
                       "PRIVATE KEY-----\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    config = tmp_path / "everything.toml"
    config.write_text("""name = "careless"
[[nats]]
name = "pw"
user = "console"
password_env = "T17_NATS_PASSWORD"
client_cert = "client.pem"
client_key = "client.key"
[[nats.nodes]]
name = "n1"
client_url = "nats://127.0.0.1:1"
[[nats]]
name = "nk"
nkey_file = "user.nk"
[[nats.nodes]]
name = "n2"
client_url = "nats://127.0.0.1:1"
[[leaves]]
name = "l1"
user = "alice"
credentials_file = "leaf.creds"
client_url = "nats://127.0.0.1:1"
monitor_url = "http://127.0.0.1:1"
[vault]
token_file = "vault.token"
[[vault.nodes]]
name = "v1"
api_addr = "http://127.0.0.1:1"
[provisioner]
base_url = "http://127.0.0.1:1"
admin_token_env = "T17_ADMIN_TOKEN"
member_tokens_file = "members.json"
member_nats_passwords_file = "nats-passwords.json"
control_key_file = "control.pem"
[ssh]
[[ssh.hosts]]
name = "h1"
host = "127.0.0.1"
identity_file = "id_ed25519"
""")
    return config


class PlantsEverySecret(Scenario):
    """Quotes every secret its inventory references: in evidence, a log line, the abort."""

    id, title = "careless.everything", "quotes every secret"
    needs_lab = False
    mutates = ()

    async def method(self, run: Run) -> None:
        inv = run.inventory
        values = [ref.resolve() for ref in secret_refs(inv)]
        values += [p.read_text() for p in secret_files(inv)]
        blob = " | ".join(values)
        logging.getLogger("opsconsole.careless").warning("about to fail with %s", blob)
        await run.record("careless evidence", outcome(False, everything=blob, each=values))
        raise Abort(f"gave up after trying {blob}")


def test_every_resolved_secret_is_redacted_everywhere(monkeypatch, tmp_path, capsys,
                                                     caplog) -> None:
    config = _inventory(tmp_path, monkeypatch)
    monkeypatch.setitem(scenario_registry.PACKS, "careless", [PlantsEverySecret])
    outputs = []
    for argv in (["run", "careless", "--json"], ["run", "careless"]):
        code = cli_main(["--config", str(config), *argv, "--report",
                         str(tmp_path / f"r{len(outputs)}")])
        out, err = capsys.readouterr()
        assert code == 1, err
        outputs += [out, err]
    assert "[redacted]" in outputs[0]  # the evidence was there, redacted
    assert "gave up after trying [redacted]" in outputs[3]
    assert "[redacted]" in caplog.text or "[redacted]" in outputs[1] + outputs[3]
    reports = [p for p in tmp_path.glob("r*/**/*") if p.is_file()]
    assert {p.suffix for p in reports} >= {".json", ".md", ".xml", ".jsonl"}
    written = "".join(p.read_text(errors="replace") for p in reports)
    assert "[redacted]" in written
    for name, secret in SECRETS.items():
        for where, text in [("stdout/stderr", "".join(outputs)), ("reports", written),
                            ("log", caplog.text)]:
            assert secret not in text, f"{name} leaked into {where}"
    # every value the scenario read was remembered by the process for redaction
    known = resolved_secrets()
    for name in ("nats_password", "vault_token", "admin_token", "member_token",
                 "nats_member_password"):  # SecretRefs; member_token from inside a JSON
        assert SECRETS[name] in known, name
    assert set(SECRET_FILE_KEYS) >= {"credentials_file", "nkey_file", "client_key",
                                     "identity_file"}


def test_a_secret_in_a_one_line_error_is_redacted(monkeypatch, tmp_path, capsys) -> None:
    """A target echoing a credential back in its error (e.g. a proxy quoting the request)
    reaches the operator redacted: the CLI's one-line error goes through the redactor."""
    monkeypatch.setenv("T17_TOKEN", "s.echoed-back-by-a-proxy-42")
    Redactor().text("")  # the live redactor knows what resolve() reads from now on
    from opsconsole.config_fields import SecretRef

    SecretRef(env="T17_TOKEN").resolve()
    from opsconsole import cli
    from opsconsole.errors import UserError

    def boom(_args):
        raise UserError("target said: bad token s.echoed-back-by-a-proxy-42")

    monkeypatch.setattr(cli, "cmd_info", boom)
    assert cli_main(["info"]) == 2
    err = capsys.readouterr().err
    assert "s.echoed-back-by-a-proxy-42" not in err and "[redacted]" in err
