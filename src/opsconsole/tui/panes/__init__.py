"""One module per pane; each renders from :class:`opsconsole.core.state.State`."""

from .base import Pane
from .health import ClusterHealthPane
from .histograms import HistogramPane
from .instances import InstancesPane
from .relay import RelayPane

PANES: list[type[Pane]] = [ClusterHealthPane, RelayPane, InstancesPane, HistogramPane]

__all__ = ["PANES", "ClusterHealthPane", "HistogramPane", "InstancesPane", "Pane", "RelayPane"]
