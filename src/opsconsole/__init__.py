"""opsconsole: an operator console for integration, chaos and scale testing."""

__version__ = "0.1.0"
