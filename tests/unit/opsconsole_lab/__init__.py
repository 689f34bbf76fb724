"""Unit tests of the reference systems (src/opsconsole_lab/): in process, no process started."""
