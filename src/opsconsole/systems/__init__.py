"""The built-in systems: one folder each (config, clients, probes, events and state slice,
fault kinds, checks, packs), each exposing one ``SYSTEM`` registered under the entry-point
group ``opsconsole.systems`` in ``pyproject.toml`` (see :mod:`opsconsole.core.system`)."""
