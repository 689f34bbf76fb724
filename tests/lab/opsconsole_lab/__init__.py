"""Tests of the reference systems (src/opsconsole_lab/) running as real processes."""
