"""Run options, derived from the scenarios' options models (:class:`ScenarioOptions`).

Every option a registered scenario declares becomes an ``opsconsole run`` flag
(``find_max`` → ``--find-max``; a ``bool`` field is a switch), and ``-o key=value`` sets
any of them by name; the console's options form lists the same fields. Values arrive as
text and are validated by the scenario's model, so a bad one is one line naming the flag,
the value and the scenario.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from ..errors import UserError, validation_message
from .engine import Scenario


@dataclass(frozen=True)
class OptionField:
    """One option of one scenario's model."""

    scenario: str
    name: str
    field: FieldInfo

    @property
    def flag(self) -> str:
        return flag(self.name)

    @property
    def is_switch(self) -> bool:
        return self.field.annotation is bool

    @property
    def default(self) -> Any:
        return self.field.get_default(call_default_factory=True)

    @property
    def metavar(self) -> str:
        extra = self.field.json_schema_extra
        given = extra.get("metavar") if isinstance(extra, dict) else None
        return str(given) if given else self.name.upper()

    @property
    def help(self) -> str:
        """The description, with the default when the description does not give it."""
        text = self.field.description or ""
        if self.default is not None and not self.is_switch and "default" not in text:
            text += f" (default {self.default})"
        return text


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def fields_of(scenario: Scenario | type[Scenario]) -> list[OptionField]:
    return [OptionField(scenario.id, name, info)
            for name, info in scenario.Options.model_fields.items()]


def all_option_fields(scenarios: list[Scenario]) -> dict[str, list[OptionField]]:
    """``{option name: [its field in each scenario that takes it]}``."""
    found: dict[str, list[OptionField]] = {}
    for scenario in scenarios:
        for f in fields_of(scenario):
            found.setdefault(f.name, []).append(f)
    return found


def add_option_flags(group: argparse._ArgumentGroup, scenarios: list[Scenario]) -> list[str]:
    """A flag per option name (its help: each scenario's description); the names."""
    names = []
    for name, fields in sorted(all_option_fields(scenarios).items()):
        helps: dict[str, list[str]] = {}
        for f in fields:
            helps.setdefault(f.help, []).append(f.scenario)
        text = "; ".join(f"{', '.join(ids)}: {desc}" if desc else ", ".join(ids)
                         for desc, ids in helps.items())
        if all(f.is_switch for f in fields):
            group.add_argument(flag(name), dest=name, action="store_true", default=None,
                               help=text)
        else:
            group.add_argument(flag(name), dest=name, default=None, help=text,
                               metavar=fields[0].metavar)
        names.append(name)
    return names


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``-o key=value`` items → ``{key: value}`` (dashes in a key read as underscores)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"-o {item!r}: expected KEY=VALUE, e.g. -o rate=200", exit_code=2)
        out[key.strip().replace("-", "_")] = value
    return out


def apply_options(selector: str, found: list[Scenario], options: dict[str, Any],
                  every: list[Scenario]) -> None:
    """Configure ``found`` with ``options``. An option none of them takes, or a value its
    model rejects, is a :class:`UserError` (exit 2) naming the flag, before anything runs."""
    for name, value in options.items():
        takers = [s for s in found if name in s.Options.model_fields]
        if not takers:
            users = [s.id for s in every if name in s.Options.model_fields]
            raise UserError(f"{flag(name)} does not apply to {selector} (it applies to: "
                            f"{', '.join(users) or 'no scenario'})", exit_code=2)
        for scenario in takers:
            try:
                scenario.configure(**{name: value})
            except ValidationError as exc:
                raise UserError(f"{flag(name)} {value!r}: {validation_message(exc, where=False)} "
                                f"({scenario.id})", exit_code=2) from None


def validate_options(cls: type[Scenario], values: dict[str, Any]) -> str | None:
    """Why ``values`` are not valid options of ``cls`` (one line naming the flag), or None."""
    scenario = cls()
    try:
        apply_options(cls.id, [scenario], values, [scenario])
    except UserError as exc:
        return str(exc)
    return None
