"""Sessions in DynamoDB: one item per session, plus one lease item per user.

Items:
  ``session_id = s-<hash>``  user_id, client_id, status, created_at, message_ids (SS),
                             last_commit, restarts, end_reason, expires_at (TTL) …
  ``session_id = user#<u>``  active_session: the user's one live session (no ``user_id``,
                             so leases stay out of the sparse ``by_user`` GSI)

Every write is conditional: a session is created only if absent (a redelivered email
finds its session instead of making a second one), status changes name the states they
may leave, and the user lease is claimed only when free or held by a dead session.
"""

from __future__ import annotations

import hashlib
import time
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

STATUSES = ("pending", "starting", "active", "expired", "failed")
LIVE = ("pending", "starting", "active")
ENDED = ("expired", "failed")
LIVE_TTL_S = 24 * 3600  # a live session nobody ends still disappears after a day

_ser, _de = TypeSerializer(), TypeDeserializer()


def session_id_for(message_id: str) -> str:
    """Deterministic id: the email that opens a session names it (duplicates collide)."""
    return "s-" + hashlib.sha256(message_id.encode()).hexdigest()[:12]


def _av(value: Any) -> dict[str, Any]:
    if isinstance(value, float):
        value = Decimal(str(value))
    return _ser.serialize(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    return value


def _item(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_de.deserialize(v)) for k, v in raw.items()}


class SessionStore:
    def __init__(self, ddb: Any, table: str, retention_s: int) -> None:
        self.ddb = ddb
        self.table = table
        self.retention_s = retention_s
        self.failed_conditions = 0
        #: last status this stack wrote or read per session: cheap live counts for a console
        self.known: dict[str, str] = {}

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for status in self.known.values():
            out[status] = out.get(status, 0) + 1
        return out

    def _conditional_failed(self, exc: Exception) -> bool:
        if isinstance(exc, self.ddb.exceptions.ConditionalCheckFailedException):
            self.failed_conditions += 1
            return True
        return False

    async def get(self, session_id: str) -> dict[str, Any] | None:
        r = await self.ddb.get_item(TableName=self.table, Key={"session_id": _av(session_id)},
                                    ConsistentRead=True)
        if "Item" not in r:
            return None
        item = _item(r["Item"])
        if session_id in self.known and item.get("status") in STATUSES:
            self.known[session_id] = item["status"]  # someone else may have ended it
        return item

    async def create(self, session_id: str, user: str, client: str, message_id: str) -> bool:
        """Put a ``pending`` session; False when it already exists."""
        now = time.time()
        item = {"session_id": session_id, "user_id": user, "client_id": client,
                "status": "pending", "created_at": now, "updated_at": now,
                "opened_by": message_id, "restarts": 0, "instructions": 0,
                "expires_at": int(now + LIVE_TTL_S)}
        try:
            await self.ddb.put_item(TableName=self.table,
                                    Item={k: _av(v) for k, v in item.items()},
                                    ConditionExpression="attribute_not_exists(session_id)")
        except Exception as exc:
            if self._conditional_failed(exc):
                return False
            raise
        self.known[session_id] = "pending"
        return True

    async def transition(self, session_id: str, to: str, from_: tuple[str, ...],
                         **fields: Any) -> dict[str, Any] | None:
        """Move to ``to`` if the session is in one of ``from_``; None if it is not."""
        now = time.time()
        values = {"updated_at": now, **fields}
        if to in ENDED:
            values.setdefault("ended_at", now)
            values["expires_at"] = int(now + self.retention_s)
        names = {"#s": "status"}
        sets = ["#s = :to"]
        attrs: dict[str, Any] = {":to": _av(to)}
        for i, (k, v) in enumerate(values.items()):
            names[f"#f{i}"] = k
            attrs[f":f{i}"] = _av(v)
            sets.append(f"#f{i} = :f{i}")
        allowed = []
        for i, state in enumerate(from_):
            attrs[f":a{i}"] = _av(state)
            allowed.append(f":a{i}")
        try:
            r = await self.ddb.update_item(
                TableName=self.table, Key={"session_id": _av(session_id)},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_exists(session_id) AND "
                                    f"#s IN ({', '.join(allowed)})",
                ExpressionAttributeNames=names, ExpressionAttributeValues=attrs,
                ReturnValues="ALL_NEW")
        except Exception as exc:
            if self._conditional_failed(exc):
                return None
            raise
        item = _item(r["Attributes"])
        self.known[session_id] = to
        return item

    async def bump_restarts(self, session_id: str) -> None:
        await self.ddb.update_item(
            TableName=self.table, Key={"session_id": _av(session_id)},
            UpdateExpression="ADD restarts :one SET updated_at = :now",
            ExpressionAttributeValues={":one": _av(1), ":now": _av(time.time())})

    async def record_applied(self, session_id: str, message_id: str,
                             commit: str | None) -> bool:
        """Remember an applied email on its session; False if it was already recorded."""
        try:
            await self.ddb.update_item(
                TableName=self.table, Key={"session_id": _av(session_id)},
                UpdateExpression="ADD message_ids :m, instructions :one "
                                 "SET last_message_id = :mid, last_commit = :c, "
                                 "updated_at = :now, applied_at = :now",
                ConditionExpression="attribute_exists(session_id) AND "
                                    "NOT contains(message_ids, :mid)",
                ExpressionAttributeValues={":m": {"SS": [message_id]}, ":mid": _av(message_id),
                                           ":one": _av(1), ":c": _av(commit or ""),
                                           ":now": _av(time.time())})
        except Exception as exc:
            if self._conditional_failed(exc):
                return False
            raise
        return True

    async def note_error(self, session_id: str, error: str) -> None:
        await self.ddb.update_item(
            TableName=self.table, Key={"session_id": _av(session_id)},
            UpdateExpression="SET last_error = :e, updated_at = :now",
            ConditionExpression="attribute_exists(session_id)",
            ExpressionAttributeValues={":e": _av(error[:500]), ":now": _av(time.time())})

    # ---------------------------------------------------------------- leases
    async def lease(self, user: str) -> str | None:
        r = await self.ddb.get_item(TableName=self.table, Key={"session_id": _av(f"user#{user}")},
                                    ConsistentRead=True)
        value = r.get("Item", {}).get("active_session", {}).get("S")
        return value or None

    async def claim(self, user: str, session_id: str, replacing: str | None) -> bool:
        """Point the user's lease at ``session_id`` if it is free or still ``replacing``."""
        cond = "attribute_not_exists(active_session) OR active_session = :sid"
        values = {":sid": _av(session_id), ":now": _av(time.time())}
        if replacing:
            cond += " OR active_session = :old"
            values[":old"] = _av(replacing)
        try:
            await self.ddb.update_item(
                TableName=self.table, Key={"session_id": _av(f"user#{user}")},
                UpdateExpression="SET active_session = :sid, lease_user = :u, updated_at = :now",
                ConditionExpression=cond,
                ExpressionAttributeValues={**values, ":u": _av(user)})
        except Exception as exc:
            if self._conditional_failed(exc):
                return False
            raise
        return True

    async def release(self, user: str, session_id: str) -> bool:
        try:
            await self.ddb.update_item(
                TableName=self.table, Key={"session_id": _av(f"user#{user}")},
                UpdateExpression="REMOVE active_session SET updated_at = :now",
                ConditionExpression="active_session = :sid",
                ExpressionAttributeValues={":sid": _av(session_id), ":now": _av(time.time())})
        except Exception as exc:
            if self._conditional_failed(exc):
                return False
            raise
        return True

    # --------------------------------------------------------------- queries
    async def by_user(self, user: str) -> list[dict[str, Any]]:
        """The user's sessions, newest first (through the ``by_user`` GSI)."""
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": "by_user",
            "KeyConditionExpression": "user_id = :u",
            "ExpressionAttributeValues": {":u": _av(user)}, "ScanIndexForward": False}
        while True:
            r = await self.ddb.query(**kwargs)
            out += [_item(i) for i in r["Items"]]
            if "LastEvaluatedKey" not in r:
                return out
            kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]

    async def scan(self) -> list[dict[str, Any]]:
        """Every session item (not leases); refreshes the known statuses."""
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table,
                                  "FilterExpression": "begins_with(session_id, :p)",
                                  "ExpressionAttributeValues": {":p": _av("s-")}}
        while True:
            r = await self.ddb.scan(**kwargs)
            out += [_item(i) for i in r["Items"]]
            if "LastEvaluatedKey" not in r:
                self.known.update({s["session_id"]: s["status"] for s in out})
                return out
            kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]
