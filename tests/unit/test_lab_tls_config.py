"""Issue 17: the lab's generated configs, secured (the default) and with `[lab] tls = false`.
No process: the text each server would be started with."""

from __future__ import annotations

from pathlib import Path

from opsconsole.config import LabSpec
from opsconsole.lab.nats_topology import (
    CentralNode,
    LeafServer,
    TlsFiles,
    central_config,
    console_subjects,
    leaf_config,
)
from opsconsole.lab.supervisor import Topology, allocate_ports
from opsconsole.lab.vault_topology import VaultNodeSpec, node_config

TLS = TlsFiles(Path("/lab/tls/ca.pem"), Path("/lab/tls/server.pem"), Path("/lab/s/server.key"))


def test_secured_is_the_default_and_tls_false_turns_it_off() -> None:
    assert LabSpec().tls is True
    spec = LabSpec(tls=False)
    topo = Topology.plan(spec, allocate_ports(spec), tls=False)
    assert all(n.client_url.startswith("nats://") for n in [*topo.central, *topo.leaves])
    assert all(v.api_addr.startswith("http://") for v in topo.vault)
    topo = Topology.plan(LabSpec(), allocate_ports(LabSpec()), tls=True)
    assert all(n.client_url.startswith("tls://") and n.monitor_url.startswith("https://")
               for n in [*topo.central, *topo.leaves])
    assert all(v.api_addr.startswith("https://") for v in topo.vault)


def test_central_config_secured_and_plain() -> None:
    node = CentralNode("nats-1", 4222, 8222, 6222, 7422, tls=True)
    text = central_config(node, [6001, 6002], Path("/js"), {"u1": "pw"}, "adminpw", TLS,
                          "consolepw", ["u1"])
    assert text.count('cert_file: "/lab/tls/server.pem"') == 3  # clients, routes, leafnodes
    assert "verify: true" in text  # routes check each other's certificate
    assert 'https: "127.0.0.1:8222"' in text and "no_auth_user" not in text
    assert 'user: "console"' in text and "adminpw" not in text
    for subject in console_subjects(["u1"]):
        assert f'"{subject}"' in text
    assert "$SYS" not in text
    plain = central_config(CentralNode("nats-1", 4222, 8222, 6222, 7422), [6001], Path("/js"),
                           {"u1": "pw"}, "adminpw")
    assert "cert_file" not in plain and 'no_auth_user: "admin"' in plain
    assert 'http: "127.0.0.1:8222"' in plain


def test_leaf_and_vault_configs_secured() -> None:
    leaf = leaf_config(LeafServer("leaf-u1", "u1", 4223, 8223, tls=True), [7001], "pw", TLS,
                       "consolepw")
    assert 'tls: { ca_file: "/lab/tls/ca.pem" }' in leaf  # the link checks the hub
    assert 'user: "console", password: "consolepw"' in leaf
    vault = node_config(VaultNodeSpec("vault-1", 8200, 8201, tls=True), Path("/r"),
                        Path("/seal"), Path("/audit"), TLS)
    assert 'tls_min_version = "tls13"' in vault and "tls_disable" not in vault
    assert 'api_addr = "https://127.0.0.1:8200"' in vault
    plain = node_config(VaultNodeSpec("vault-1", 8200, 8201), Path("/r"), Path("/seal"),
                        Path("/audit"))
    assert "tls_disable = true" in plain and "tls_cert_file" not in plain
