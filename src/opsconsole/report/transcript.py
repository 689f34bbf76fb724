"""Signed run transcripts and their verification."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import time
from pathlib import Path
from typing import Any

import psutil

from .. import __version__
from .journal import canonical, verify_chain
from .signing import fingerprint, public_key_b64, sign, verify

SIGNED_FIELDS_NOTE = "signature covers the canonical JSON of every other field"


def system_info() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "kernel": platform.release(),
            "os": platform.system(), "arch": platform.machine(),
            "cores": psutil.cpu_count(), "memory_bytes": psutil.virtual_memory().total,
            "python": platform.python_version()}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def journal_section(journal: Path) -> dict[str, Any]:
    ok, reason, head, count = verify_chain(journal)
    if not ok:
        raise ValueError(f"refusing to sign a broken journal: {reason}")
    return {"file": journal.name, "sha256": sha256_file(journal), "head": head,
            "events": count}


def sign_transcript(body: dict[str, Any], key: Any) -> dict[str, Any]:
    doc = {**body, "tool": {"name": "opsconsole", "version": __version__},
           "public_key": public_key_b64(key), "signed_at": time.time()}
    doc["signature"] = sign(key, canonical(doc))
    return doc


def write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def verify_transcript(path: Path, expect_key: str | None = None) -> tuple[bool, str]:
    """(intact, message). Checks the signature, then the journal it names, if any."""
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        return False, f"{path}: cannot read: {exc.strerror}"
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False, f"{path}: not valid JSON (modified or truncated)"
    if not isinstance(doc, dict) or "signature" not in doc or "public_key" not in doc:
        return False, f"{path}: no signature or public key: not an opsconsole transcript"
    signature = doc.pop("signature")
    key = doc["public_key"]
    if not verify(key, signature, canonical(doc)):
        return False, f"{path}: signature does not match its content (modified)"
    if expect_key and key != expect_key:
        return False, f"{path}: signed by {fingerprint(key)}, not by the expected key"
    journal = doc.get("journal")
    if journal:
        jpath = path.parent / journal["file"]
        if not jpath.exists():
            return False, f"{jpath}: journal named by the transcript is missing"
        if sha256_file(jpath) != journal["sha256"]:
            ok, reason, _, _ = verify_chain(jpath)
            detail = reason or "content differs from the signed hash"
            return False, f"{jpath}: journal modified ({detail})"
        ok, reason, head, count = verify_chain(jpath)
        if not ok or head != journal["head"] or count != journal["events"]:
            return False, f"{jpath}: journal chain invalid ({reason or 'head/count mismatch'})"
    return True, f"{path}: intact, signed by {fingerprint(key)}"
