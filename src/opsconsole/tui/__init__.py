"""The Textual console: a thin layer that reads core state and calls session methods."""
