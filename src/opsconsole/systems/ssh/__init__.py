"""SSH hosts: connection settings, host checks (smoke) and the fault kinds run over SSH."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...core.system import ConfigSection, Loc, System
from .config import SshConfig

if TYPE_CHECKING:
    from ...faults.kinds import FaultKind


def _has_hosts(value: Any) -> bool:
    return isinstance(value, dict) and bool(value.get("hosts"))


class SshSystem(System):
    name = "ssh"
    title = "SSH hosts"
    order = 60

    def config_sections(self) -> Mapping[str, ConfigSection]:
        return {"ssh": ConfigSection(SshConfig, SshConfig(), "[[ssh.hosts]]",
                                     is_target=_has_hosts)}

    def cross_check(self, raw: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
        from ...config import duplicates

        ssh = raw.get("ssh") if isinstance(raw.get("ssh"), dict) else {}
        jump = ssh.get("jump_host") if isinstance(ssh.get("jump_host"), dict) else {}
        hosts: list[tuple[Loc, dict[str, Any]]] = [(("ssh", "jump_host"), jump)] if jump else []
        hosts += [(("ssh", "hosts", i), h) for i, h in enumerate(ssh.get("hosts") or [])
                  if isinstance(h, dict)]
        yield from duplicates("ssh host", ((loc, h["name"]) for loc, h in hosts
                                           if isinstance(h.get("name"), str)))
        tunnels = {h["name"]: h.get("tunnel") for _, h in hosts if isinstance(h.get("name"), str)}
        for loc, host in hosts:
            tunnel = host.get("tunnel")
            if not isinstance(tunnel, str):
                continue
            if tunnel not in tunnels:
                yield ((*loc, "tunnel"),
                       f"tunnel {tunnel!r} is not a defined ssh host or the jump host")
                continue
            hop, seen_hops = tunnel, {host.get("name")}
            while isinstance(hop, str) and hop in tunnels and hop not in seen_hops:
                seen_hops.add(hop)
                hop = tunnels[hop]
            if hop in seen_hops:
                yield (*loc, "tunnel"), "tunnel chain loops back on itself"

    def fault_kinds(self) -> Sequence[FaultKind]:
        from .faults import KINDS

        return KINDS


SYSTEM = SshSystem()
