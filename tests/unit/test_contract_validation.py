"""The contract validator names the wrong field's path; every contract document is valid
OpenAPI 3.1."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from opsconsole.scenarios.checks import ContractLog, contract_outcome, json_or_text
from opsconsole.targets.contract import CONTRACTS_DIR, Contract

DOC = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "paths": {"/thing/{id}": {"get": {"responses": {
        "200": {"description": "ok", "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Thing"}}}},
        "404": {"description": "none"}}}}},
    "components": {"schemas": {
        "Thing": {"type": "object", "required": ["status", "inner"], "properties": {
            "status": {"enum": ["healthy", "degraded"]},
            "inner": {"type": "object", "required": ["latency_ms"], "properties": {
                "latency_ms": {"type": ["number", "null"], "minimum": 0}}}}}}},
}


@pytest.fixture
def contract(tmp_path: Path) -> Contract:
    (tmp_path / "t.openapi.yaml").write_text(yaml.safe_dump(DOC))
    return Contract.load("t", tmp_path)


def test_conforming_body_passes(contract: Contract) -> None:
    body = {"status": "healthy", "inner": {"latency_ms": 1.5}}
    assert contract.violations("GET", "/thing/{id}", 200, body) == []
    assert contract_outcome(contract, "GET", "/thing/{id}", 200, body)[0] == "pass"


def test_wrong_type_names_the_field_path(contract: Contract) -> None:
    body = {"status": "healthy", "inner": {"latency_ms": "fast"}}
    status, evidence = contract_outcome(contract, "GET", "/thing/{id}", 200, body)
    assert status == "fail"
    assert evidence["violations"][0].startswith("$.inner.latency_ms: 'fast' is not of type")


def test_undeclared_status_and_operation_fail(contract: Contract) -> None:
    assert "HTTP 500 is not a declared answer" in str(
        contract.violations("GET", "/thing/{id}", 500, {})[0])
    assert "not in the t contract" in str(contract.violations("POST", "/thing/{id}", 200, {})[0])
    assert contract.violations("GET", "/thing/{id}", 404, None) == []


def test_the_contract_log_fails_on_any_wrong_answer_it_saw(contract: Contract) -> None:
    log = ContractLog(contract)
    log.check("GET", "/thing/{id}", 200, {"status": "healthy", "inner": {"latency_ms": 1}})
    assert log.outcome() == ("pass", {"contract": "t", "responses": 1, "violations": []})
    log.check("GET", "/thing/{id}", 200, json_or_text("<html>oops</html>"))  # not JSON
    status, evidence = log.outcome()
    assert status == "fail" and evidence["responses"] == 2
    assert evidence["violations"][0].startswith("GET /thing/{id} → 200: $: ")


def test_a_referenced_response_object_is_validated_too() -> None:
    """A response given as ``$ref: '#/components/responses/…'`` is followed to its schema
    (negative control: the wrong type fails there as it does inline)."""
    contract = Contract.load("vault-instance")
    health = {"status": "healthy", "uptime_seconds": 3,
              "local_nats": {"status": "running", "connections": 1},
              "central_nats": {"status": "connected", "latency_ms": 0.4},
              "vault_manager": {"status": "healthy", "memory_mb": 30.5, "cpu_percent": 0.0,
                                "handlers_loaded": 4}}
    assert contract.violations("GET", "/vault/health", 200, health) == []
    [wrong] = contract.violations("GET", "/vault/health", 200, {**health,
                                                                "uptime_seconds": "3"})
    assert str(wrong).startswith("$.uptime_seconds: '3' is not of type 'number'")
    assert contract.violations("POST", "/vault/provision", 401, {"error": ""})


@pytest.mark.parametrize("source", sorted(CONTRACTS_DIR.glob("*.openapi.yaml")),
                         ids=lambda p: p.name)
def test_contract_documents_are_valid_openapi_31(source: Path) -> None:
    document = yaml.safe_load(source.read_text())
    assert str(document["openapi"]).startswith("3.1")
    validate(document)
