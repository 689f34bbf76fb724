"""Journal, signed transcripts, JUnit and Markdown reports, verification."""

from .journal import Journal, read_events, verify_chain
from .redact import Redactor
from .transcript import verify_transcript

__all__ = ["Journal", "Redactor", "read_events", "verify_chain", "verify_transcript"]
