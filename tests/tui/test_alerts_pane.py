"""Firing alerts show in the Cluster health pane."""

from __future__ import annotations

from opsconsole.systems.vault.events import AlertChanged

from .fixtures import healthy_cluster, idle_session, make_app, until


async def test_health_pane_shows_firing_alerts() -> None:
    session = idle_session()
    app = make_app(session)
    async with app.run_test(size=(160, 48)) as pilot:
        healthy_cluster(session)
        pane = app.query_one("#pane-health")
        await until(pilot, lambda: "alerts:" in str(pane.border_subtitle), "the subtitle")
        assert "alerts: none firing" in str(pane.border_subtitle)
        session.bus.publish(AlertChanged(name="VaultSealed", instance="vault-2",
                                         state="firing", severity="critical",
                                         summary="Vault node vault-2 is sealed"))
        await until(pilot, lambda: "VaultSealed" in str(pane.border_subtitle), "the alert")
        assert "VaultSealed(vault-2)" in str(pane.border_subtitle)
        assert pane.has_class("-alerting")
        assert any("VaultSealed FIRING" in e.text for e in session.state.timeline)
        session.bus.publish(AlertChanged(name="VaultSealed", instance="vault-2",
                                         state="resolved"))
        await until(pilot, lambda: "VaultSealed" not in str(pane.border_subtitle),
                    "the alert to clear")
        assert "alerts: none firing" in str(pane.border_subtitle)
