"""Seed contracts: the OpenAPI 3.1 documents in ``docs/contracts/`` and response validation.

A pack validates every response it gets from a system under test against the system's
written contract (the seed's endpoints and response structures), so a wrong field shows
up as a failing check that names the field's path (``$.central_nats.latency_ms``), not
as a ``KeyError`` three steps later. Validation is openapi-schema-validator's
``OAS31Validator`` (JSON Schema 2020-12 plus OpenAPI's vocabulary) on the response schema
the document declares for the operation and status; ``$ref`` resolves inside the document.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

#: src/opsconsole/targets/contract.py -> repository root / docs / contracts
CONTRACTS_DIR = Path(__file__).resolve().parents[3] / "docs" / "contracts"


@dataclass(frozen=True)
class Violation:
    """One way a response breaks its contract: where (a JSON path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _json_path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Contract:
    """One OpenAPI document: ``violations(method, path, status, body)`` for a response."""

    def __init__(self, name: str, document: dict[str, Any]) -> None:
        self.name = name
        self.document = document
        self._uri = f"urn:opsconsole:contract:{name}"
        self._registry: Registry = Registry().with_resource(
            self._uri, Resource.from_contents(document, default_specification=DRAFT202012))

    @classmethod
    def load(cls, name: str, directory: Path | None = None) -> Contract:
        """``docs/contracts/<name>.openapi.yaml``; cached (the documents do not change)."""
        return _load(name, directory or CONTRACTS_DIR)

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        return (self.document.get("paths", {}).get(path) or {}).get(method.lower())

    def operations(self) -> list[tuple[str, str]]:
        """Every (METHOD, path template) the contract declares."""
        return [(m.upper(), p) for p, item in self.document.get("paths", {}).items()
                for m in item if m in ("get", "post", "put", "delete", "patch")]

    def violations(self, method: str, path: str, status: int, body: Any) -> list[Violation]:
        """What is wrong with ``body`` as the ``status`` answer of ``METHOD path`` (a path
        template of the document, e.g. ``/session/{id}/health``); empty when it conforms.

        A status the operation does not declare is itself a violation; a declared status
        without a JSON schema only checks the status."""
        op = self.operation(method, path)
        if op is None:
            return [Violation("$", f"{method.upper()} {path} is not in the {self.name} "
                                   "contract")]
        responses = op.get("responses", {})
        key = str(status) if str(status) in responses else \
            f"{str(status)[0]}XX" if f"{str(status)[0]}XX" in responses else \
            "default" if "default" in responses else None
        if key is None:
            return [Violation("$", f"HTTP {status} is not a declared answer of "
                                   f"{method.upper()} {path} ({', '.join(responses)})")]
        where, response = self._response(["paths", path, method.lower(), "responses", key],
                                         responses[key])
        content = response.get("content", {})
        if "application/json" not in content or "schema" not in content["application/json"]:
            return []
        ref = "#/" + _pointer(*where, "content", "application/json", "schema")
        validator = OAS31Validator({"$ref": self._uri + ref}, registry=self._registry,
                                   format_checker=OAS31Validator.FORMAT_CHECKER)
        found = sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
        return [Violation(_json_path(e.absolute_path), e.message) for e in found]


    def _response(self, where: list[str], response: dict[str, Any]
                  ) -> tuple[list[str], dict[str, Any]]:
        """A response object, following its local ``$ref`` (``#/components/responses/…``)
        to the object itself; its JSON-pointer parts and the object."""
        seen: set[str] = set()
        while isinstance(response, dict) and "$ref" in response:
            ref = str(response["$ref"])
            if not ref.startswith("#/") or ref in seen:
                raise ValueError(f"{self.name} contract: unresolvable response $ref {ref!r}")
            seen.add(ref)
            where = [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]
            node: Any = self.document
            for part in where:
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise ValueError(f"{self.name} contract: response $ref {ref!r} names nothing")
            response = node
        return where, response


@functools.cache
def _load(name: str, directory: Path) -> Contract:
    source = directory / f"{name}.openapi.yaml"
    with open(source, encoding="utf-8") as fh:
        document = yaml.safe_load(fh)
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3.1"):
        raise ValueError(f"{source}: not an OpenAPI 3.1 document")
    return Contract(name, document)
