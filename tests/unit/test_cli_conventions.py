"""Issue 17, conventions: the inventory search path, `opsconsole info`, `--json` on every
command that prints results, and `opsconsole completion`. No process is started: the
server binaries' `--version` runs go through a fake `subprocess.run` (the real runs, and
`bash -n` on the scripts, are in tests/lab/test_cli_conventions_processes.py)."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from opsconsole import __version__, cli, cli_info
from opsconsole.cli import main as cli_main
from opsconsole.config import DEFAULT_CONFIG
from opsconsole.faults.ledger import FaultLedger
from opsconsole.lab.state import resolve_state_dir
from opsconsole.report.signing import load_or_create_key
from opsconsole.report.transcript import sign_transcript
from opsconsole.scenarios import PACKS, all_scenarios
from opsconsole.settings import settings

NATS_ONLY = ('name = "{name}"\n[[nats]]\nname = "c"\n[[nats.nodes]]\nname = "n1"\n'
             'client_url = "nats://127.0.0.1:1"\nmonitor_url = "http://127.0.0.1:1"\n')


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No user config, a private state dir, and fake server binaries that answer
    `--version` / `version` through a fake subprocess.run."""
    for name in ("OPSCONSOLE_CONFIG", "XDG_CONFIG_HOME", "XDG_STATE_HOME",
                 "OPSCONSOLE_LAB_DIR", "OPSCONSOLE_KEYMAP", "VAULT_ADDR", "BAO_ADDR",
                 "NATS_URL", "NATS_CONTEXT", "VAULT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPSCONSOLE_STATE_DIR", str(tmp_path / "state"))
    for var, name in (("OPSCONSOLE_NATS_SERVER", "nats-server"), ("OPSCONSOLE_BAO", "bao")):
        fake = tmp_path / "bin" / name
        fake.parent.mkdir(exist_ok=True)
        fake.write_text("#!/bin/sh\n")
        fake.chmod(0o755)
        monkeypatch.setenv(var, str(fake))
    answers = {"nats-server": "nats-server: v2.10.22\n",
               "bao": "OpenBao v2.2.0 (abc123), built 2025-03-01T00:00:00Z\n"}

    def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert kwargs["timeout"] == cli_info.VERSION_TIMEOUT_S
        expected = {"nats-server": ["--version"], "bao": ["version"]}[Path(argv[0]).name]
        assert argv[1:] == expected
        return subprocess.CompletedProcess(argv, 0, answers[Path(argv[0]).name], "")

    monkeypatch.setattr(cli_info.subprocess, "run", fake_run)
    return monkeypatch


def _inventory(tmp_path: Path, name: str, where: str) -> Path:
    path = tmp_path / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(NATS_ONLY.format(name=name))
    return path


def _chosen(config: Path | None = None) -> Path | None:
    inv = cli._load_inventory(argparse.Namespace(config=config))
    return inv.source


def _info(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """`info --json`'s exit code and document; its stderr stays in ``_info.err``."""
    code = cli_main(["info", "--json", *argv])
    out, _info.err = capsys.readouterr()  # type: ignore[attr-defined]
    return code, json.loads(out)


# ----------------------------------------------------------- the search path
def test_without_config_or_variables_the_built_in_default_is_chosen(env, capsys) -> None:
    assert _chosen() == DEFAULT_CONFIG
    code, report = _info(capsys)
    assert code == 0
    rows = report["config"]["search_path"]
    assert [r["source"] for r in rows] == ["--config", "$OPSCONSOLE_CONFIG",
                                           "$XDG_CONFIG_HOME/opsconsole/config.toml",
                                           "vault/NATS environment", "built-in default"]
    assert [r["chosen"] for r in rows] == [False, False, False, False, True]
    assert rows[2]["path"] == str(settings().user_config_file) and not rows[2]["exists"]
    assert rows[2]["why"] == "no such file"
    assert report["config"]["chosen"] == str(DEFAULT_CONFIG)


def test_with_no_file_the_vault_cli_environment_is_the_inventory(env, tmp_path, capsys) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    env.setenv("VAULT_ADDR", "https://vault.example:8200")
    env.setenv("VAULT_TOKEN", "s.some-token-value")
    env.setenv("VAULT_CACERT", str(ca))
    env.setenv("VAULT_NAMESPACE", "team-a")
    inv = cli._load_inventory(argparse.Namespace(config=None))
    assert inv.lab is None and inv.name == "environment"
    assert [n.api_addr for n in inv.vault.nodes] == ["https://vault.example:8200"]
    assert inv.vault.token.env == "VAULT_TOKEN" and inv.vault.ca_cert == ca
    assert inv.vault.namespace == "team-a"
    code, report = _info(capsys)
    assert code == 0
    rows = {r["source"]: r for r in report["config"]["search_path"]}
    assert rows["vault/NATS environment"]["chosen"]
    assert not rows["built-in default"]["chosen"]
    assert rows["$XDG_CONFIG_HOME/opsconsole/config.toml"]["why"] == "no such file"
    assert "s.some-token-value" not in json.dumps(report)


def test_the_labs_own_exports_do_not_replace_the_lab(env, tmp_path) -> None:
    env.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    env.setenv("OPSCONSOLE_LAB_DIR", str(tmp_path / "lab"))  # `eval $(opsconsole lab env)`
    assert _chosen() == DEFAULT_CONFIG


def test_a_file_inventory_without_vault_takes_it_from_the_environment(env, tmp_path) -> None:
    env.setenv("VAULT_ADDR", "https://vault.example:8200")
    inv = cli._load_inventory(argparse.Namespace(config=_inventory(tmp_path, "n", "i.toml")))
    assert inv.vault is not None and inv.vault.nodes[0].api_addr == "https://vault.example:8200"
    assert inv.vault.token is None  # no VAULT_TOKEN, no ~/.vault-token
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "home" / ".vault-token").write_text("s.x\n")
    inv = cli._load_inventory(argparse.Namespace(config=_inventory(tmp_path, "n", "i.toml")))
    assert inv.vault.token.file == tmp_path / "home" / ".vault-token"


def test_a_bad_vault_addr_names_the_variable(env, capsys) -> None:
    env.setenv("VAULT_ADDR", "vault.example:8200")
    assert cli_main(["vault", "health"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "$VAULT_ADDR: must be a http:// or https:// URL" in err


def test_nats_url_and_creds_from_the_environment(env, tmp_path) -> None:
    creds = tmp_path / "u.creds"
    creds.write_text("x")
    env.setenv("NATS_URL", "tls://a.example:4222, tls://b.example:4222")
    env.setenv("NATS_CREDS", str(creds))
    inv = cli._load_inventory(argparse.Namespace(config=None))
    [cluster] = inv.nats
    assert [n.client_url for n in cluster.nodes] == ["tls://a.example:4222",
                                                     "tls://b.example:4222"]
    assert cluster.credentials_file == creds and cluster.nodes[0].monitor_url is None


def test_the_xdg_config_is_chosen_when_it_exists(env, tmp_path, capsys) -> None:
    env.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert _chosen() == DEFAULT_CONFIG  # control: the XDG dir is set, the file missing
    xdg = _inventory(tmp_path, "from-xdg", "xdg/opsconsole/config.toml")
    assert _chosen() == xdg
    code, report = _info(capsys)
    assert code == 0 and report["config"]["chosen"] == str(xdg)
    row = report["config"]["search_path"][2]
    assert row == {"source": "$XDG_CONFIG_HOME/opsconsole/config.toml", "path": str(xdg),
                   "exists": True, "chosen": True, "why": "chosen: exists"}
    assert report["config"]["search_path"][3]["why"] == "not consulted"
    assert report["lab_state_dir"] is None  # that inventory has no [lab]


def test_the_xdg_default_is_under_home_dot_config(env, tmp_path) -> None:
    home_cfg = _inventory(tmp_path, "home", "home/.config/opsconsole/config.toml")
    assert _chosen() == home_cfg


def test_opsconsole_config_beats_xdg_and_config_beats_both(env, tmp_path, capsys) -> None:
    env.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    _inventory(tmp_path, "from-xdg", "xdg/opsconsole/config.toml")
    from_env = _inventory(tmp_path, "from-env", "env.toml")
    flag = _inventory(tmp_path, "from-flag", "flag.toml")
    env.setenv("OPSCONSOLE_CONFIG", str(from_env))
    assert _chosen() == from_env
    assert _chosen(flag) == flag
    code, report = _info(capsys, "--config", str(flag))
    assert code == 0
    assert [r["chosen"] for r in report["config"]["search_path"]] == [True, False, False,
                                                                      False, False]
    assert report["config"]["search_path"][0]["why"] == "chosen: given on the command line"
    env.setenv("OPSCONSOLE_CONFIG", str(tmp_path / "missing.toml"))
    assert _chosen(flag) == flag  # --config wins: the broken variable is not consulted


def test_an_empty_opsconsole_config_counts_as_unset(env) -> None:
    env.setenv("OPSCONSOLE_CONFIG", "")
    assert _chosen() == DEFAULT_CONFIG


def test_opsconsole_config_naming_a_missing_file_is_one_line_exit_2(env, tmp_path,
                                                                    capsys) -> None:
    missing = tmp_path / "missing.toml"
    env.setenv("OPSCONSOLE_CONFIG", str(missing))
    env.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    _inventory(tmp_path, "from-xdg", "xdg/opsconsole/config.toml")  # no silent fallback
    for argv in (["lab", "env"], ["run", "smoke", "--dry-run"], ["heal", "--json"]):
        assert cli_main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert out == ""
        assert err == (f"opsconsole: environment variable OPSCONSOLE_CONFIG={missing}: no "
                       "such file (point it at an inventory TOML, or unset it)\n"), argv
    code, report = _info(capsys)  # info still shows the whole picture, and exits 2
    assert code == 2
    assert report["config"]["chosen"] is None and not report["config"]["builtin_defaults"]
    assert report["config"]["problems"][0].startswith("environment variable OPSCONSOLE_CONFIG=")
    row = report["config"]["search_path"][1]
    assert row["path"] == str(missing) and not row["exists"] and not row["chosen"]
    assert _info.err.startswith("opsconsole: environment variable OPSCONSOLE_CONFIG=")  # type: ignore[attr-defined]


def test_an_invalid_chosen_config_is_exit_2_with_its_problems(env, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[vault]\n[[vault.nodes]]\nname = "v1"\napi_addr = "ftp://x"\n')
    env.setenv("OPSCONSOLE_CONFIG", str(bad))
    assert cli_main(["lab", "env"]) == 2
    assert "vault.nodes[0].api_addr" in capsys.readouterr().err
    code, report = _info(capsys)
    assert code == 2 and report["config"]["chosen"] == str(bad)
    assert any("vault.nodes[0].api_addr" in p for p in report["config"]["problems"])


# ---------------------------------------------------------------------- info
def test_info_paths_are_the_ones_the_ledger_signer_and_lab_use(env, tmp_path, capsys) -> None:
    code, report = _info(capsys, "--state-dir", str(tmp_path / "lab-flag"))
    assert code == 0
    state = (tmp_path / "state").resolve()
    assert report["user_state_dir"] == str(state)
    assert report["fault_ledger"] == str(FaultLedger().path) == str(state / "faults.jsonl")
    load_or_create_key()  # the signer writes its key where info says it is
    assert Path(report["signing_key"]).is_file()
    assert Path(report["signing_key"]).parent == state
    assert report["lab_state_dir"] == str(resolve_state_dir(tmp_path / "lab-flag"))
    env.setenv("OPSCONSOLE_LAB_DIR", str(tmp_path / "lab-env"))
    _, report = _info(capsys)
    assert report["lab_state_dir"] == str(tmp_path / "lab-env")


def test_info_names_a_state_dir_it_cannot_create_and_a_missing_config(env, tmp_path,
                                                                       capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env.setenv("OPSCONSOLE_STATE_DIR", str(blocker / "state"))
    code, report = _info(capsys)
    assert code == 0 and report["fault_ledger"] is None and report["signing_key"] is None
    assert report["user_state_dir"] == str(blocker / "state")
    assert report["state_error"] == f"{blocker / 'state'}: cannot create: Not a directory"
    code, report = _info(capsys, "--config", str(tmp_path / "nope.toml"))
    assert code == 2
    row = report["config"]["search_path"][0]
    assert row["chosen"] and row["why"] == "chosen: given on the command line; no such file"
    assert report["config"]["problems"] == [f"{tmp_path / 'nope.toml'}: cannot read: No such "
                                            "file or directory"]


def test_info_versions(env, capsys) -> None:
    _, report = _info(capsys)
    v = report["versions"]
    assert v["opsconsole"] == {"version": __version__, "error": None}
    assert v["textual"] == {"version": importlib.metadata.version("textual"), "error": None}
    assert v["nats-server"] == {"version": "2.10.22", "error": None,
                                "path": str(settings().nats_server)}
    assert v["bao"] == {"version": "2.2.0", "error": None, "path": str(settings().bao)}


def test_a_missing_binary_is_not_found_with_the_reason(env, tmp_path, capsys) -> None:
    env.setenv("OPSCONSOLE_NATS_SERVER", str(tmp_path / "no-nats"))
    env.setenv("OPSCONSOLE_BAO", str(tmp_path / "no-bao"))
    code, report = _info(capsys)
    assert code == 0  # missing servers are worth knowing, not a failure of info
    nats, bao = report["versions"]["nats-server"], report["versions"]["bao"]
    assert nats == {"version": None, "path": None,
                    "error": f"not found: missing binary: OPSCONSOLE_NATS_SERVER="
                             f"{tmp_path / 'no-nats'} is not an executable file"}
    assert bao["version"] is None and bao["error"].startswith("not found: ")
    assert cli_main(["info"]) == 0
    out = capsys.readouterr().out
    assert "nats-server  not found: missing binary: OPSCONSOLE_NATS_SERVER=" in out


@pytest.mark.parametrize(("outcome", "error"), [
    (subprocess.TimeoutExpired(["x"], 5.0), "`nats-server --version` gave no answer "
                                            "within 5 s"),
    (PermissionError(13, "Permission denied"), "cannot run `nats-server --version`: "
                                               "Permission denied"),
    (subprocess.CompletedProcess(["x"], 3, "", "boom\nmore"), "`nats-server --version` "
                                                              "exited 3: boom"),
    (subprocess.CompletedProcess(["x"], 0, "", ""), "`nats-server --version` exited 0"),
])
def test_a_binary_that_hangs_crashes_or_says_nothing_is_an_error_not_a_traceback(
        env, outcome, error) -> None:
    def run(argv: list[str], **kwargs: Any) -> Any:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    env.setattr(cli_info.subprocess, "run", run)
    got = cli_info.binary_version(lambda: "/opt/bin/nats-server", "--version")
    assert got == {"version": None, "path": "/opt/bin/nats-server", "error": error}


def test_info_text_marks_the_chosen_entry_and_never_prints_secrets(env, tmp_path,
                                                                   capsys) -> None:
    cfg = tmp_path / "vault.toml"
    cfg.write_text('name = "v"\n[vault]\ntoken_env = "MY_VAULT_TOKEN"\n[[vault.nodes]]\n'
                   'name = "v1"\napi_addr = "http://127.0.0.1:1"\n')
    env.setenv("MY_VAULT_TOKEN", "s3cr3t-t0ken-value")
    env.setenv("OPSCONSOLE_CONFIG", str(cfg))
    assert cli_main(["info"]) == 0
    out = capsys.readouterr().out
    chosen = [line for line in out.splitlines() if line.startswith("  → ")]
    assert chosen == [f"  → $OPSCONSOLE_CONFIG{' ' * 23}{cfg}: chosen: set"]
    assert f"config          {cfg}" in out and "lab state dir   none" in out
    assert "s3cr3t" not in out
    assert cli_main(["info", "--json"]) == 0
    assert "s3cr3t" not in capsys.readouterr().out


# -------------------------------------------------------------------- --json
def test_lab_down_json_on_a_lab_that_is_not_running(env, tmp_path, capsys) -> None:
    lab_dir = tmp_path / "lab"
    assert cli_main(["lab", "down", "--json", "--state-dir", str(lab_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["state_dir"] == str(lab_dir) and out["stopped"] == []
    assert isinstance(out["elapsed_seconds"], float)
    assert cli_main(["lab", "down", "--state-dir", str(lab_dir)]) == 0  # control: text
    assert capsys.readouterr().out.startswith("lab down: stopped 0 process(es) in ")


def test_config_check_json_keeps_the_exit_codes(env, tmp_path, capsys) -> None:
    good = _inventory(tmp_path, "good", "good.toml")
    assert cli_main(["config", "check", "--json", str(good)]) == 0
    assert json.loads(capsys.readouterr().out) == {"file": str(good), "ok": True,
                                                   "problems": []}
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[vault]\n[[vault.nodes]]\nname = "v1"\napi_addr = "ftp://x"\n')
    assert cli_main(["config", "check", str(bad)]) == 1
    text_lines = capsys.readouterr().out.splitlines()
    assert cli_main(["config", "check", str(bad), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["problems"] == text_lines
    assert any("vault.nodes[0].api_addr" in p for p in doc["problems"])


def _transcript(tmp_path: Path) -> tuple[Path, str]:
    doc = sign_transcript({"run_id": "r1", "scenarios": []}, load_or_create_key())
    path = tmp_path / "run" / "transcript.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    return path, doc["public_key"]


def test_verify_json_intact_and_modified(env, tmp_path, capsys) -> None:
    path, key = _transcript(tmp_path)
    assert cli_main(["verify", "--json", str(path.parent)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["public_key"] == key and doc["transcript"] == str(path)
    path.write_text(path.read_text().replace('"r1"', '"r2"'))
    assert cli_main(["verify", "--json", str(path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"ok": False, "transcript": str(path), "public_key": None,
                   "message": f"{path}: signature does not match its content (modified)"}
    assert cli_main(["verify", "--json", str(tmp_path / "none.json")]) == 1
    assert "cannot read" in json.loads(capsys.readouterr().out)["message"]


def test_heal_json_lists_what_the_text_does_and_no_params(env, tmp_path, capsys) -> None:
    cfg = _inventory(tmp_path, "unit", "unit.toml")
    assert cli_main(["--config", str(cfg), "heal", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "faults": []}
    ledger = FaultLedger()
    ok = ledger.open_fault("no.such.kind", "n1", {"token": "s3cr3t"}, 600, heal={})
    bad = ledger.open_fault("vault.seal", "v1", {}, 600, heal={})  # an invalid heal spec
    assert cli_main(["--config", str(cfg), "heal", "--json"]) == 1
    out = capsys.readouterr().out
    assert "s3cr3t" not in out
    doc = json.loads(out)
    assert doc["ok"] is False
    by_id = {f["id"]: f for f in doc["faults"]}
    assert by_id[ok.id] == {"id": ok.id, "fault": "no.such.kind", "target": "n1",
                            "status": "healed", "note": "unknown kind",
                            "left_by_earlier_run": False}
    assert by_id[bad.id]["status"] == "heal_failed"
    assert "heal spec of vault.seal is not valid" in by_id[bad.id]["note"]


def test_vault_health_json_on_an_unreachable_node(env, tmp_path, capsys) -> None:
    cfg = tmp_path / "vault.toml"
    cfg.write_text('name = "v"\n[[vault.nodes]]\nname = "v1"\napi_addr = "http://127.0.0.1:1"\n')
    assert cli_main(["--config", str(cfg), "vault", "health", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["target"] == "v" and doc["healthy"] is False
    assert [(n["name"], n["api_addr"], n["health"]) for n in doc["nodes"]] == [
        ("v1", "http://127.0.0.1:1", "unreachable: connection refused (127.0.0.1:1)")]
    nats_only = _inventory(tmp_path, "n", "n.toml")  # control: no [vault] target
    assert cli_main(["--config", str(nats_only), "vault", "health", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "no [vault] target" in err


# ---------------------------------------------------------------- completion
def _script(capsys: pytest.CaptureFixture[str], shell: str) -> str:
    assert cli_main(["completion", shell]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_has_the_commands_flags_and_scenario_ids(shell, capsys) -> None:
    script = _script(capsys, shell)
    for word in ("run", "lab", "vault", "info", "completion", "history"):
        assert word in script, (shell, word)
    for flag in ("read-only", "config", "json", "state-dir", "dry-run", "strict"):
        assert (f"-l {flag}" if shell == "fish" else f"--{flag}") in script, (shell, flag)
    one_id = all_scenarios()[0].id
    assert one_id in script and next(iter(PACKS)) in script
    assert "opsconsole" in script


def test_completion_choices_do_not_change_what_run_accepts(capsys) -> None:
    _script(capsys, "bash")
    parser = cli.build_parser()
    assert parser.parse_args(["run", "no-such-pack"]).selector == "no-such-pack"


@pytest.mark.parametrize("argv", [["completion", "tcsh"], ["completion"],
                                  ["info", "--bogus"], ["lab"]])
def test_bad_input_is_one_line_exit_2(argv, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        cli_main(argv)
    assert caught.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("opsconsole") and "error: " in err
