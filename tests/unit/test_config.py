"""Config loading: what a user sees when a config file is right, wrong, or leaks a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsconsole.config import (
    DEFAULT_CONFIG,
    ConfigError,
    Inventory,
    SecretRef,
    check_config,
    load_config,
)
from opsconsole.systems.vault.config import VaultCluster

REPO = Path(__file__).resolve().parents[2]

VAULT = """
name = "t"
[vault]
token_env = "VAULT_TOKEN"
[[vault.nodes]]
name = "v0"
api_addr = "https://v0.internal:8200"
"""


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    return check_config(write(tmp_path, text))


# --------------------------------------------------------------------------- shipped configs


@pytest.mark.parametrize("name", ["lab.toml", "example-aws.toml"])
def test_shipped_configs_are_valid(name: str) -> None:
    assert check_config(REPO / "config" / name) == []


def test_default_config_is_the_lab() -> None:
    assert DEFAULT_CONFIG == REPO / "config" / "lab.toml"
    inv = load_config(DEFAULT_CONFIG)
    assert inv.name == "lab"
    assert inv.lab is not None and inv.lab.leaf_users == ["u1", "u2"]
    assert inv.nats == [] and inv.vault is None and inv.aws is None


def test_example_aws_is_typed_and_paths_are_relative_to_the_file() -> None:
    path = REPO / "config" / "example-aws.toml"
    inv = load_config(path)
    assert isinstance(inv, Inventory) and inv.source == path
    assert [n.name for n in inv.nats[0].nodes] == ["nats-a", "nats-b", "nats-c"]
    assert len(inv.leaves) == 2 and len(inv.vault.nodes) == 3
    assert inv.vault.token == SecretRef(env="VAULT_TOKEN")
    assert inv.vault.ca_cert == REPO / "config" / "certs" / "vault-ca.pem"
    assert inv.aws.region and inv.aws.profile
    assert {h.tunnel for h in inv.ssh.hosts} == {"bastion"}
    assert any(h.faults for h in inv.ssh.hosts)
    assert inv.ssh.config_file == Path("~/.ssh/config").expanduser()


# --------------------------------------------------------------------------- inline secrets


def test_inline_vault_token_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write(tmp_path, VAULT.replace('token_env = "VAULT_TOKEN"', 'token = "s.abc123"'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [
        f"{path}: vault.token: inline secret refused; reference it with token_env or token_file"
    ]
    assert "s.abc123" not in str(info.value) and "s.abc123" not in repr(info.value)


def test_inline_secret_inside_a_list_is_refused(tmp_path: Path) -> None:
    text = """
name = "t"
[[ssh.hosts]]
name = "h0"
host = "h0.internal"
password = "hunter2"
[[ssh.hosts]]
name = "h1"
host = "h1.internal"
aws_secret_access_key = "AKIAsecret"
"""
    found = problems(tmp_path, text)
    assert len(found) == 2
    assert "ssh.hosts[0].password: inline secret refused" in found[0]
    assert "ssh.hosts[1].aws_secret_access_key: inline secret refused" in found[1]
    assert not any("hunter2" in p or "AKIAsecret" in p for p in found)


def test_both_env_and_file_for_one_secret(tmp_path: Path) -> None:
    found = problems(tmp_path, VAULT.replace("[vault]", '[vault]\ntoken_file = "tok"'))
    assert found == [
        f"{tmp_path / 'c.toml'}: vault.token: give only one of token_env or token_file"
    ]


def test_bad_values_are_never_echoed(tmp_path: Path) -> None:
    text = VAULT.replace('"VAULT_TOKEN"', '"s.topsecret-value"').replace(
        '"https://v0.internal:8200"', '"s.othersecret"'
    )
    found = problems(tmp_path, text)
    assert len(found) == 2
    assert any("vault.token_env: must be an environment variable name" in p for p in found)
    assert any("vault.nodes[0].api_addr: must be a http:// or https:// URL" in p for p in found)
    assert not any("topsecret" in p or "othersecret" in p for p in found)


# --------------------------------------------------------------------------- schema problems


def test_unknown_key_reports_full_dotted_path(tmp_path: Path) -> None:
    text = VAULT + '[[vault.nodes]]\nname = "v1"\napi_adr = "https://v1.internal:8200"\n'
    found = problems(tmp_path, text)
    assert f"{tmp_path / 'c.toml'}: vault.nodes[1].api_adr: unknown key" in found
    assert any("vault.nodes[1].api_addr: required key missing" in p for p in found)


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("client_url", "http://n0:4222", "nats[0].nodes[0].client_url"),
        ("monitor_url", "nats://n0:8222", "nats[0].nodes[0].monitor_url"),
        ("monitor_url", "http://:8222", "nats[0].nodes[0].monitor_url"),
        ("client_url", "nats://u:pw@n0:4222", "nats[0].nodes[0].client_url"),
    ],
)
def test_bad_url_names_the_key(tmp_path: Path, key: str, value: str, path: str) -> None:
    node = {"client_url": "nats://n0:4222", "monitor_url": "http://n0:8222", key: value}
    text = 'name = "t"\n[[nats]]\nname = "c"\n[[nats.nodes]]\nname = "n0"\n' + "".join(
        f'{k} = "{v}"\n' for k, v in node.items()
    )
    found = problems(tmp_path, text)
    assert len(found) == 1 and f": {path}: " in found[0]
    assert "pw@" not in found[0]


def test_port_out_of_range(tmp_path: Path) -> None:
    found = problems(tmp_path, 'name = "t"\n[[ssh.hosts]]\nname = "h"\nhost = "h"\nport = 70000\n')
    assert len(found) == 1 and "ssh.hosts[0].port:" in found[0]


def test_duplicate_node_names(tmp_path: Path) -> None:
    text = """
name = "t"
[[nats]]
name = "a"
[[nats.nodes]]
name = "n1"
client_url = "nats://a1:4222"
monitor_url = "http://a1:8222"
[[nats]]
name = "b"
[[nats.nodes]]
name = "n1"
client_url = "nats://b1:4222"
monitor_url = "http://b1:8222"
"""
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert "nats[1].nodes[0].name: duplicate NATS node name 'n1'" in found[0]


def test_tunnel_must_name_a_host_or_the_jump_host(tmp_path: Path) -> None:
    text = """
name = "t"
[ssh.jump_host]
name = "bastion"
host = "bastion.example.com"
[[ssh.hosts]]
name = "ok"
host = "ok.internal"
tunnel = "bastion"
[[ssh.hosts]]
name = "bad"
host = "bad.internal"
tunnel = "bastoin"
"""
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert "ssh.hosts[1].tunnel: tunnel 'bastoin' is not a defined ssh host" in found[0]


def test_leaf_hub_must_be_a_nats_node(tmp_path: Path) -> None:
    text = """
name = "t"
[[leaves]]
name = "l1"
user = "u1"
client_url = "nats://l1:4222"
monitor_url = "http://l1:8222"
hub = "nats-z"
"""
    found = problems(tmp_path, text)
    assert any("leaves[0].hub: hub 'nats-z' is not a NATS node name" in p for p in found)


def test_lab_plus_vault_conflict(tmp_path: Path) -> None:
    found = problems(tmp_path, VAULT + "[lab]\nnats_nodes = 1\n")
    assert found == [
        f"{tmp_path / 'c.toml'}: lab: the embedded lab supplies nats/leaves/vault/aws; "
        "remove [vault]"
    ]


def test_config_without_lab_needs_a_target(tmp_path: Path) -> None:
    found = problems(tmp_path, 'name = "t"\n')
    assert len(found) == 1 and "define at least one of" in found[0]


def test_lab_leaf_users_are_validated(tmp_path: Path) -> None:
    found = problems(tmp_path, 'name = "t"\n[lab]\nleaf_users = ["u1", "Bad User"]\n')
    assert len(found) == 1 and "lab.leaf_users[1]: must match" in found[0]
    found = problems(tmp_path, 'name = "t"\n[lab]\nleaf_users = ["u1", "u1"]\n')
    assert len(found) == 1 and "lab.leaf_users: leaf user names must be unique" in found[0]


# --------------------------------------------------------------------------- file-level problems


def test_toml_syntax_error_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "t"\n\n[vault\n')
    found = check_config(path)
    assert len(found) == 1 and found[0].startswith(f"{path}: line 3: ")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert check_config(path) == [f"{path}: cannot read: No such file or directory"]
    with pytest.raises(ConfigError):
        load_config(str(path))


def test_all_problems_are_reported_not_just_the_first(tmp_path: Path) -> None:
    text = """
name = "t"
colour = "blue"
[vault]
password = "pw"
[[vault.nodes]]
name = "v0"
api_addr = "ftp://v0"
[[ssh.hosts]]
name = "h"
host = "h"
port = 0
tunnel = "nowhere"
"""
    found = problems(tmp_path, text)
    paths = [p.split(": ")[1] for p in found]
    assert sorted(paths) == sorted(
        ["colour", "vault.password", "vault.nodes[0].api_addr", "ssh.hosts[0].port",
         "ssh.hosts[0].tunnel"]
    )  # fmt: skip
    assert all(p.startswith(str(tmp_path / "c.toml") + ": ") and "\n" not in p for p in found)


# --------------------------------------------------------------------------- SecretRef


def test_secret_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = load_config(write(tmp_path, VAULT))
    monkeypatch.setenv("VAULT_TOKEN", "s.fromenv")
    assert inv.vault is not None and inv.vault.token is not None
    assert inv.vault.token.resolve() == "s.fromenv"


def test_unset_env_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, VAULT)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    token = load_config(path).vault.token
    with pytest.raises(ConfigError) as info:
        token.resolve()
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{path}: vault.token_env: ")
    assert "VAULT_TOKEN" in info.value.problems[0]


def test_secret_from_file_relative_to_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg_dir = tmp_path / "etc"
    (cfg_dir / "secrets").mkdir(parents=True)
    (cfg_dir / "secrets" / "vault-token").write_text("s.fromfile\n", encoding="utf-8")
    path = write(
        cfg_dir, VAULT.replace('token_env = "VAULT_TOKEN"', 'token_file = "secrets/vault-token"')
    )
    monkeypatch.chdir(tmp_path)  # resolution must not depend on the working directory
    token = load_config(path).vault.token
    assert token.file == cfg_dir / "secrets" / "vault-token"
    assert token.resolve() == "s.fromfile"


def test_missing_secret_file_names_the_file(tmp_path: Path) -> None:
    ref = SecretRef(file=tmp_path / "absent")
    with pytest.raises(ConfigError, match="absent"):
        ref.resolve()


def test_repr_never_shows_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_TEST_TOKEN", "s.very-secret")
    ref = SecretRef(env="OPS_TEST_TOKEN")
    assert ref.resolve() == "s.very-secret"
    cluster = VaultCluster(nodes=[{"name": "v0", "api_addr": "http://v0:8200"}], token=ref)
    for text in (repr(ref), str(ref), repr(cluster), str(cluster), cluster.model_dump_json()):
        assert "very-secret" not in text
    assert "OPS_TEST_TOKEN" in repr(ref)
