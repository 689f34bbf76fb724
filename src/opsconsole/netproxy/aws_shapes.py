"""Which AWS service a signed request is for, and a throttling answer in its protocol.

The service is the SigV4 credential scope's (``Credential=KEY/DATE/REGION/SERVICE/
aws4_request``, from the ``Authorization`` header or a presigned URL's
``X-Amz-Credential``); the protocol is read off the request itself, as the SDKs choose it
from the service model: ``X-Amz-Target`` → JSON 1.0/1.1, ``smithy-protocol: rpc-v2-cbor``
→ CBOR, a form body → query (EC2's own variant for ``ec2``), else REST (XML for S3, JSON
otherwise). The answers are the shapes AWS sends and botocore parses, written from the
AWS protocol documentation, not from botocore's parsers.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

_SCOPE = re.compile(r"Credential=[^/\s,]+/\d{8}/[^/\s,]+/([^/\s,]+)/aws4_request")

#: DynamoDB's own throttling error (its JSON 1.0 ``__type`` carries the namespace)
DYNAMODB_THROTTLE = "ProvisionedThroughputExceededException"
DYNAMODB_TYPE = f"com.amazonaws.dynamodb.v20120810#{DYNAMODB_THROTTLE}"
DYNAMODB_MESSAGE = ("The level of configured provisioned throughput for the table was "
                    "exceeded. Consider increasing your provisioning level with the "
                    "UpdateTable API.")


@dataclass(frozen=True)
class AwsCall:
    service: str  # "" when the request is not SigV4-signed (moto's own API, a probe)
    operation: str
    protocol: str  # json | cbor | query | ec2 | rest-xml | rest-json


def service_of(headers: Mapping[str, str], query: Mapping[str, str]) -> str:
    """(``headers``: case-insensitive, as aiohttp gives them)"""
    scope = _SCOPE.search(headers.get("Authorization", ""))
    if scope:
        return scope.group(1)
    cred = query.get("X-Amz-Credential", "").split("/")
    return cred[3] if len(cred) == 5 else ""


def identify(method: str, path: str, headers: Mapping[str, str], query: Mapping[str, str],
             body: bytes) -> AwsCall:
    service = service_of(headers, query)
    target = headers.get("X-Amz-Target", "")
    if target:
        return AwsCall(service, target.rsplit(".", 1)[-1], "json")
    if headers.get("smithy-protocol", "").lower() == "rpc-v2-cbor":
        return AwsCall(service, path.rstrip("/").rsplit("/", 1)[-1], "cbor")
    if headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8", "replace"))
        action = (form.get("Action") or [query.get("Action", "")])[0]
        return AwsCall(service, action, "ec2" if service == "ec2" else "query")
    if "Action" in query:
        return AwsCall(service, query["Action"], "ec2" if service == "ec2" else "query")
    return AwsCall(service, method, "rest-xml" if service == "s3" else "rest-json")


def _cbor_text(value: str) -> bytes:
    data = value.encode()
    if len(data) < 24:
        return bytes([0x60 + len(data)]) + data
    if len(data) < 256:
        return bytes([0x78, len(data)]) + data
    return bytes([0x79]) + len(data).to_bytes(2, "big") + data


def _cbor_map(items: dict[str, str]) -> bytes:
    """A CBOR map of short text strings (RFC 8949 major types 3 and 5): all a smithy
    RPCv2 error body needs."""
    out = bytes([0xA0 + len(items)])
    for key, value in items.items():
        out += _cbor_text(key) + _cbor_text(value)
    return out


def throttle_response(call: AwsCall, content_type: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the throttling error ``call``'s service answers with."""
    rid = str(uuid.uuid4())
    if call.protocol == "json":
        if call.service == "dynamodb":
            kind, message = DYNAMODB_TYPE, DYNAMODB_MESSAGE
        else:
            kind, message = "ThrottlingException", "Rate exceeded"
        body = json.dumps({"__type": kind, "message": message}).encode()
        ctype = content_type if content_type.startswith("application/x-amz-json") else \
            "application/x-amz-json-1.1"
        return 400, {"Content-Type": ctype, "x-amzn-RequestId": rid}, body
    if call.protocol == "cbor":
        return 400, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                     "x-amzn-RequestId": rid}, _cbor_map(
            {"__type": "ThrottlingException", "message": "Rate exceeded"})
    if call.protocol == "ec2":  # EC2's throttle: RequestLimitExceeded, HTTP 503
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
                "<Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                f"</Message></Error></Errors><RequestID>{rid}</RequestID></Response>")
        return 503, {"Content-Type": "text/xml;charset=UTF-8"}, body.encode()
    if call.protocol == "query":
        ns = escape(f"https://{call.service}.amazonaws.com/doc/")
        body = (f"<ErrorResponse xmlns=\"{ns}\"><Error><Type>Sender</Type>"
                "<Code>ThrottlingException</Code><Message>Rate exceeded</Message></Error>"
                f"<RequestId>{rid}</RequestId></ErrorResponse>")
        return 400, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body.encode()
    if call.protocol == "rest-xml":  # S3's throttle: SlowDown, HTTP 503
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
                "<Message>Please reduce your request rate.</Message>"
                f"<RequestId>{rid}</RequestId></Error>")
        return 503, {"Content-Type": "application/xml", "x-amz-request-id": rid}, \
            body.encode()
    return 429, {"Content-Type": "application/json", "x-amzn-ErrorType": "ThrottlingException",
                 "x-amzn-RequestId": rid}, json.dumps({"message": "Rate exceeded"}).encode()
