"""What users send: an email body with ``key: value`` lines, and a tiny instruction grammar.

Email body::

    user: alice
    client: acme
    instruction: create page about llamas

Instructions (case-insensitive keywords)::

    create page about <topic>
    create page <title>: <text>
    update page <title>: <text>
    delete page <title>
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

USER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_CREATE_ABOUT = re.compile(r"^create\s+page\s+about\s+(?P<title>.+)$", re.I | re.S)
_WITH_TEXT = re.compile(r"^(?P<action>create|update)\s+page\s+(?P<title>[^:]+):\s*(?P<text>.*)$",
                        re.I | re.S)
_DELETE = re.compile(r"^delete\s+page\s+(?P<title>.+)$", re.I | re.S)


class InstructionError(ValueError):
    """The email or its instruction cannot be understood (a user error: never retried)."""


@dataclass(frozen=True)
class Instruction:
    action: Literal["create", "update", "delete"]
    slug: str
    title: str
    text: str


@dataclass(frozen=True)
class EmailRequest:
    user: str
    client: str
    instruction: str


def slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60].strip("-")
    if not slug:
        raise InstructionError(f"page title {title!r} has no letters or digits")
    return slug


def parse_instruction(text: str) -> Instruction:
    text = text.strip()
    if m := _CREATE_ABOUT.match(text):
        title = m["title"].strip()
        return Instruction("create", slugify(title), title, f"This page is about {title}.")
    if m := _WITH_TEXT.match(text):
        title = m["title"].strip()
        action: Literal["create", "update"] = "create" if m["action"].lower() == "create" \
            else "update"
        return Instruction(action, slugify(title), title, m["text"].strip())
    if m := _DELETE.match(text):
        title = m["title"].strip()
        return Instruction("delete", slugify(title), title, "")
    raise InstructionError(f"unknown instruction: {text[:80]!r}")


def format_email_body(user: str, client: str, instruction: str) -> str:
    return f"user: {user}\nclient: {client}\ninstruction: {instruction}\n"


def parse_email_body(body: str) -> EmailRequest:
    """Fields from an email body; the instruction may continue over following lines."""
    fields: dict[str, str] = {}
    key = ""
    for line in body.splitlines():
        m = re.match(r"^(user|client|instruction)\s*:\s*(.*)$", line.strip(), re.I)
        if m:
            key = m[1].lower()
            fields[key] = m[2].strip()
        elif key == "instruction" and line.strip():
            fields[key] += "\n" + line.strip()
    user = fields.get("user", "").lower()
    if not USER_RE.match(user):
        raise InstructionError(f"missing or invalid user id {user!r}")
    if not fields.get("instruction"):
        raise InstructionError("email has no instruction")
    client = fields.get("client") or "default"
    if not USER_RE.match(client):
        raise InstructionError(f"invalid client id {client!r}")
    parse_instruction(fields["instruction"])  # reject early, before any session exists
    return EmailRequest(user, client, fields["instruction"])
