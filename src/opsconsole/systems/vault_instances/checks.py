"""The observations and verdicts of the ``vault-instance`` pack, as functions.

Each function either observes a real component (central's ``/leafz``, a NATS login, a
message crossing a leaf) or turns observations into an outcome. The pack calls these
functions, and the negative-control tests call the same ones with the broken situation
(a monitor that refuses connections, credentials still valid, loss outside the window),
so a check's verdict is tested on its own code path.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import nats

from ...scenarios.engine import Outcome, outcome
from ...targets.http import ssl_for
from ...targets.nats import NatsEndpoint, as_endpoint
from ...targets.tls import TlsClient
from ..nats.canary import PathTracker
from .config import AmiPolicy

# ------------------------------------------------------------------ hub lookup


@dataclass(frozen=True)
class HubLookup:
    """Where a leaf is attached as central's ``/leafz`` shows it, and what went unread.

    A node whose ``/leafz`` could not be read is in ``unread`` (with why): it might be
    the hub, so "attached nowhere" is only an observation when ``unread`` is empty.
    """

    leaf: str
    hubs: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    unread: dict[str, str] = field(default_factory=dict)
    at: float = 0.0  # wall clock when the lookup finished

    @property
    def hub(self) -> str | None:
        return self.hubs[0] if self.hubs else None

    def evidence(self) -> dict[str, Any]:
        return {"hubs": list(self.hubs), "read": list(self.read),
                **({"unread": dict(self.unread)} if self.unread else {})}


async def find_hub(http: aiohttp.ClientSession, monitors: Mapping[str, str | None],
                   leaf: str, timeout: float = 2.0, tls: TlsClient | None = None) -> HubLookup:
    """Read every central node's ``/leafz`` (concurrently) and find ``leaf`` there
    (``tls``: the cluster's TLS keys, for https monitoring)."""

    async def read(name: str, url: str | None) -> tuple[str, list[Any] | None, str]:
        if not url:
            return name, None, "no monitor_url in the inventory"
        try:
            leafz = f"{url.rstrip('/')}/leafz"
            async with http.get(leafz, ssl=ssl_for(tls, leafz, "nats"),
                                timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                if r.status != 200:
                    return name, None, f"/leafz answered HTTP {r.status}"
                body = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return name, None, f"{type(exc).__name__}: {exc}"[:200]
        links = body.get("leafs") if isinstance(body, dict) else None
        if not isinstance(links, list):
            return name, None, "/leafz has no 'leafs' list"
        return name, links, ""

    rows = await asyncio.gather(*(read(n, u) for n, u in monitors.items()))
    hubs = tuple(name for name, links, _ in rows if links is not None and any(
        isinstance(link, dict) and link.get("name") == leaf for link in links))
    return HubLookup(leaf, hubs, tuple(n for n, links, _ in rows if links is not None),
                     {n: why for n, links, why in rows if links is None}, time.time())


def _unread_reason(lookup: HubLookup, unread: Mapping[str, str]) -> str:
    nodes = ", ".join(f"{n} ({why})" for n, why in sorted(unread.items()))
    return (f"{lookup.leaf} is on none of the nodes read, and /leafz of {nodes} could not "
            f"be read: it may be attached there")


def _verdict(failure: str | None, **evidence: Any) -> Outcome:
    """fail with ``failure`` as the reason, or pass when there is none."""
    return outcome(failure is None, **({"reason": failure} if failure else {}), **evidence)


def attached_outcome(lookup: HubLookup) -> Outcome:
    """pass: a central node lists the leaf; unknown: not found, but some node went unread."""
    if not lookup.hubs and (lookup.unread or not lookup.read):
        return "unknown", {"reason": _unread_reason(lookup, lookup.unread)
                           if lookup.unread else "no central node to look on",
                           **lookup.evidence()}
    return _verdict(None if lookup.hubs else f"no central node lists {lookup.leaf} in /leafz",
                    hub=lookup.hub, **lookup.evidence())


def detached_outcome(before: HubLookup, after: HubLookup) -> Outcome:
    """pass: the leaf was found attached before (the positive control: the lookup can see
    it) and no central node lists it now, every one of them read."""
    if not before.hubs:
        _, ev = attached_outcome(before)
        return "unknown", {"reason": "positive control failed: before the stop the lookup did "
                                     f"not find {before.leaf} attached ({ev.get('reason')}), so "
                                     "not finding it after says nothing",
                           "before": before.evidence(), "after": after.evidence()}
    evidence = {"was": before.hub, "before": before.evidence(), "after": after.evidence()}
    if not after.hubs and (after.unread or not after.read):
        return "unknown", {"reason": _unread_reason(after, after.unread) if after.unread
                           else "no central node to look on", **evidence}
    return _verdict(f"{after.leaf} still attached to {', '.join(after.hubs)}"
                    if after.hubs else None, **evidence)


def moved_outcome(lookup: HubLookup, old: str) -> Outcome:
    """pass: the leaf is attached to a central node other than ``old`` (whose /leafz is
    expected to be unreadable: it was stopped)."""
    new = [h for h in lookup.hubs if h != old]
    evidence = {"killed": old, **lookup.evidence()}
    others = {n: why for n, why in lookup.unread.items() if n != old}
    if not lookup.hubs and others:
        return "unknown", {"reason": _unread_reason(lookup, others), **evidence}
    return _verdict(None if new else f"{lookup.leaf} still attached to {old}"
                    if old in lookup.hubs else f"{lookup.leaf} attached to no central node",
                    hub=new[0] if new else None, **evidence)


# ------------------------------------------------------------- member binding


async def member_binding(central: NatsEndpoint | str, leaf: NatsEndpoint | str, member: str,
                         timeout: float = 5.0) -> Outcome:
    """Whether central binds the leaf to the member's account: a subject inside
    ``OwnerSpace.<member>`` crosses from central to the leaf, one outside it does not.

    A central that binds credential-less connections to a default user (``no_auth_user``)
    accepts a leaf with no credentials at all, so "attached" alone does not show the
    member's credentials are installed. Each round publishes outside, then inside, on one
    connection to the hub; the leaf's subscriptions go out in the same order; messages on
    one path arrive in order. So once an inside message has arrived, every outside message
    published before it would have arrived first, had central let it through.
    """
    tag = uuid.uuid4().hex[:12]
    inside, outside = f"OwnerSpace.{member}.binding.{tag}", f"OpsconsoleProbe.binding.{tag}"
    sub_nc = await as_endpoint(leaf).connect(connect_timeout=2, max_reconnect_attempts=1)
    try:
        pub_nc = await as_endpoint(central).connect(connect_timeout=2, max_reconnect_attempts=1)
        try:
            out_sub = await sub_nc.subscribe(outside)  # first: its interest travels ahead
            in_sub = await sub_nc.subscribe(inside)
            await sub_nc.flush()
            started, rounds = time.monotonic(), 0
            while in_sub.delivered == 0 and time.monotonic() - started < timeout:
                await pub_nc.publish(outside, b"outside")
                await pub_nc.publish(inside, b"inside")
                await pub_nc.flush()
                rounds += 1
                await asyncio.sleep(0.05)
            # delivered counts parse order: inside arrived, so earlier outside ones did too
            crossed_in, crossed_out = in_sub.delivered, out_sub.delivered
        finally:
            await pub_nc.close()
    finally:
        await sub_nc.close()
    return _verdict(
        f"nothing crossed to the leaf within {timeout:g} s" if crossed_in == 0 else
        f"a subject outside OwnerSpace.{member} crossed: the leaf is not bound to the "
        "member's account (no credentials, or wider ones)" if crossed_out else None,
        inside=inside, outside=outside, rounds=rounds, inside_crossed=crossed_in,
        outside_crossed=crossed_out)


# ------------------------------------------------------------------ NATS login


@dataclass(frozen=True)
class Login:
    """One attempt to log in to a NATS node with a user and password.

    ``result``: accepted | authorization (the server's Authorization Violation) |
    unreachable (refused, timed out) | tls | error (anything else, named).
    """

    node: str
    result: str
    error: str = ""  # the error's class and text, never the password

    def as_json(self) -> dict[str, str]:
        return {"result": self.result, **({"error": self.error} if self.error else {})}


def _classify(exc: BaseException, seen: Sequence[BaseException]) -> str:
    causes = [exc, *seen]
    if any(isinstance(e, nats.errors.AuthorizationError)
           or (isinstance(e, nats.errors.Error) and "authorization violation" in str(e).lower())
           for e in causes):
        return "authorization"
    if any(isinstance(e, ssl.SSLError | nats.errors.SecureConnRequiredError
                      | nats.errors.SecureConnWantedError | nats.errors.SecureConnFailedError)
           for e in causes):
        return "tls"
    if isinstance(exc, nats.errors.NoServersError | OSError):
        return "unreachable"
    return "error"


async def try_login(node: str, server: NatsEndpoint | str, user: str, password: str,
                    timeout: float = 2.0) -> Login:
    """Connect once (no reconnects) with ``user``/``password`` (and the server's TLS); how
    the server answered."""
    server = as_endpoint(server)
    seen: list[BaseException] = []

    async def on_error(exc: Exception) -> None:
        seen.append(exc)

    try:
        tls = server.ssl()
        nc = await asyncio.wait_for(nats.connect(
            server.url, user=user, password=password, allow_reconnect=False,
            **({"tls": tls, "tls_hostname": urlsplit(server.url).hostname} if tls else {}),
            max_reconnect_attempts=1, reconnect_time_wait=0.1, connect_timeout=timeout,
            error_cb=on_error), timeout * 3)
    except (TimeoutError, nats.errors.Error, OSError, ssl.SSLError) as exc:
        # every kind is classified and named below; none of them counts as accepted
        text = "; ".join(dict.fromkeys(f"{type(e).__name__}: {e}".rstrip(": ")
                                       for e in [exc, *seen]))
        return Login(node, _classify(exc, seen), text.replace(password, "***")[:300])
    await nc.close()
    return Login(node, "accepted")


def revocation_outcome(before: Sequence[Login], after: Sequence[Login]) -> Outcome:
    """pass: every node accepted the member's credentials before terminate (the positive
    control) and refuses them with an authorization error after it."""
    evidence: dict[str, Any] = {"before": {x.node: x.as_json() for x in before},
                                "after": {x.node: x.as_json() for x in after}}
    refused_before = [x.node for x in before if x.result != "accepted"]
    if not before or refused_before:
        return "unknown", {**evidence, "reason": (
            "positive control failed: the member's credentials were not accepted before "
            f"terminate (by {', '.join(refused_before) or 'no node'}), so a refusal after it "
            "would say nothing")}
    if not after:
        return "unknown", {**evidence, "reason": "no login attempted after terminate"}
    accepted = [x.node for x in after if x.result == "accepted"]
    unreachable = [x.node for x in after if x.result == "unreachable"]
    if unreachable and not accepted:
        return "unknown", {**evidence, "reason": f"{', '.join(unreachable)} unreachable after "
                                                 "terminate: not evidence of a revocation"}
    other = [f"{x.node} ({x.result})" for x in after if x.result != "authorization"]
    return _verdict(f"still accepted by {', '.join(accepted)}" if accepted else
                    f"refused for another reason than authorization by {', '.join(other)}: "
                    "not a revocation" if other else None, **evidence)


# --------------------------------------------------------------------- forApp


def answer_outcome(answers: Sequence[Any], event_id: str, etype: str,
                   result: Any = None) -> Outcome:
    """pass: an answer with this id has the event's type, ``ok: true`` and, when given,
    this result."""
    copies = [a for a in answers if isinstance(a, dict) and a.get("id") == event_id]
    right = [a for a in copies if a.get("type") == etype and a.get("ok") is True
             and (result is None or a.get("result") == result)]
    return _verdict(None if right else f"no answer with id {event_id!r}" if not copies else
                    f"the answer with id {event_id!r} is not a successful {etype}",
                    answers=len(answers), copies=len(copies),
                    first=copies[0] if copies else None)


# -------------------------------------------------------- initialize ordering


@dataclass(frozen=True)
class InstanceState:
    """The instance as the seed shows it (the provision answer's ``estimated_ready_at``, or
    an initialize it accepted) and EC2 (describe)."""

    status: str | None
    ec2: str | None = None  # None: EC2 not observable (no [aws] in the inventory)

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "ec2": self.ec2}


def only_after_running_outcome(early_http: int, after_early: InstanceState,
                               at_init: InstanceState, init_http: int | None) -> Outcome:
    """pass: initialize was refused while the instance was not running (the state seen
    right after the refusal: status only moves forward, so it held at the refusal too),
    and accepted once both the provisioner and EC2 said running."""
    evidence = {"early_http": early_http, "after_early": after_early.as_json(),
                "at_initialize": at_init.as_json(), "initialize_http": init_http}
    if after_early.status == "running":
        return "unknown", {**evidence, "reason": "the instance was already running right "
                                                 "after the early attempt: no refusal before "
                                                 "running was observed"}
    return _verdict(
        f"initialize accepted (HTTP {early_http}) while the instance was "
        f"{after_early.status}" if early_http < 400 else
        "the instance is not running yet"
        if at_init.status != "running" or at_init.ec2 not in (None, "running") else
        f"initialize answered HTTP {init_http} although running" if init_http != 200 else None,
        **evidence)


GONE = ("shutting-down", "terminated")


def time_limit_outcome(limit: float, ec2_before: str | None, http_before: int,
                       status_before: Any, ec2_after: str | None, http_after: int,
                       status_after: Any, **evidence: Any) -> Outcome:
    """pass: right after the provision the instance was not failed (EC2 not gone, or
    initialize only "not ready"); once ``limit`` had passed, initialize answers
    ``failed`` (HTTP 4xx/5xx) and EC2 shows the instance gone (nothing left running)."""
    seen = {"limit_s": limit, "before": {"ec2": ec2_before, "initialize_http": http_before,
                                         "initialize_status": status_before},
            "after": {"ec2": ec2_after, "initialize_http": http_after,
                      "initialize_status": status_after}, **evidence}
    if ec2_before in GONE:
        return _verdict("the instance was already gone right after the provision: the "
                        "failure did not wait for the limit", **seen)
    if http_before == 200:
        return _verdict("initialize accepted the slow instance: it was not stalled", **seen)
    return _verdict(
        f"after the limit initialize answered HTTP {http_after} {status_after!r}, not a "
        "failed instance" if http_after < 400 or status_after != "failed" else
        f"after the limit EC2 still shows the instance {ec2_after}" if ec2_after not in GONE
        else None, **seen)


# -------------------------------------------------------------- relay loss bound

#: a message sent this long before the hub stopped may still have been in flight through
#: it (publish → flusher → route → hub takes milliseconds here)
LEAD_S = 0.5
#: after the leaf is seen on its new hub, interest still has to propagate (the leaf's
#: subscriptions to the hub, then one route hop): milliseconds, bounded generously
TAIL_S = 1.0
#: traffic that must cross after the window for "delivered after the reconnection" to mean
#: something, in seconds of canary traffic
AFTER_MIN_S = 1.0


@dataclass(frozen=True)
class OutageWindow:
    """The measured hub switch: from just before the hub was stopped to the observation
    that the leaf is attached elsewhere (or the last observation, if it never was)."""

    start: float  # wall clock (the canary stamps messages with time.time())
    end: float
    recovered: bool = True

    @property
    def seconds(self) -> float:
        return self.end - self.start


LOSS_BOUND = (f"lost <= rate * (reconnect window + {LEAD_S + TAIL_S:g} s) + 2 per direction, "
              "none lost outside that window")


def relay_loss_outcome(paths: Mapping[str, PathTracker], rate: float,
                       window: OutageWindow | None, no_window_reason: str = "") -> Outcome:
    """The loss bound of the hub switch, per direction, over settled canary messages.

    Core NATS across a leaf link is at-most-once, so a message published while no
    interest path exists (old hub gone, new one not yet attached) is dropped; nats-py's
    own buffer does not help, its connections never drop. Loss is therefore confined to
    [start - LEAD_S, end + TAIL_S] and, as the canary never sends more than
    ``rate * L + 2`` messages in L seconds, bounded by ``rate * (window + LEAD_S + TAIL_S)
    + 2``. Asserted: that bound, zero loss before and after the window, traffic crossing
    before the fault (positive control) and at least AFTER_MIN_S of traffic after it.
    ``paths`` must be settled (every fate known) and keep their fates.
    """
    evidence: dict[str, Any] = {"rate": rate, "bound": LOSS_BOUND}
    fails: list[str] = []
    unknowns: list[str] = []
    if window is not None:
        lo, hi = window.start - LEAD_S, window.end + TAIL_S
        limit = math.floor(rate * (hi - lo)) + 2
        evidence |= {"reconnect_s": round(window.seconds, 3), "window_s": round(hi - lo, 3),
                     "recovered": window.recovered, "max_lost": limit}
    for name, t in paths.items():
        row: dict[str, Any] = {"sent": t.sent, "delivered": t.delivered, "lost": t.lost,
                               "duplicated": t.duplicated, "reordered": t.reordered}
        evidence[name] = row
        if t.fates is None or t.settled != t.sent:
            unknowns.append(f"{name}: not every message settled ({t.settled}/{t.sent})")
        elif window is None:
            (fails if t.lost else unknowns).append(
                f"{name}: {t.lost} lost with no hub switch" if t.lost else
                f"{name}: no hub switch to measure ({no_window_reason})")
        else:
            before = [d for at, d in t.fates if at < lo]
            inside = [d for at, d in t.fates if lo <= at <= hi]
            after = [d for at, d in t.fates if at > hi]
            lost_in = inside.count(False)
            lost_out = before.count(False) + after.count(False)
            row |= {"sent_before": len(before), "sent_in_window": len(inside),
                    "sent_after": len(after), "lost_in_window": lost_in,
                    "lost_outside_window": lost_out,
                    # when the lost ones were sent, in seconds from the fault (first 10)
                    "lost_at_s": [round(at - window.start, 3) for at, d in t.fates
                                  if not d][:10]}
            if lost_out or lost_in > limit:
                fails.append(f"{name}: {lost_out} lost outside the window, {lost_in} inside "
                             f"(at most {limit})")
            elif not any(before):
                unknowns.append(f"{name}: nothing crossed before the fault (positive control)")
            elif len(after) < rate * AFTER_MIN_S:
                unknowns.append(f"{name}: only {len(after)} sent after the window")
    if not paths:
        unknowns.append("no canary path")
    if fails or unknowns:
        evidence["reason"] = "; ".join(fails + unknowns)
    if unknowns and not fails:
        return "unknown", evidence
    return outcome(not fails, **evidence)


# ------------------------------------------------------- provision: image and type


def ami_policy_outcome(policy: AmiPolicy | None, image_id: str,
                       image: Mapping[str, Any] | None) -> Outcome:
    """The instance's actual image (``describe_images`` of its ``ImageId``) against the
    inventory's AMI policy; each violated rule is named. No policy: ``unknown``."""
    if policy is None or not policy.rules():
        return "unknown", {"image_id": image_id, "reason":
                           "the inventory's [provisioner] declares no ami_policy (owners, "
                           "image_ids, required_tags): nothing to hold the image to"}
    violations: list[str] = []
    if policy.image_ids and image_id not in policy.image_ids:
        violations.append(f"image {image_id} is not an allowed image id")
    if image is None:
        if violations:
            return "fail", {"image_id": image_id, "violations": violations}
        return "unknown", {"image_id": image_id, "reason": f"describe_images shows no image "
                                                           f"{image_id}: owner and tags unread"}
    owner = image.get("ImageOwnerAlias") or image.get("OwnerId")
    owners = {image.get("OwnerId"), image.get("ImageOwnerAlias")} - {None}
    if policy.owners and not owners & set(policy.owners):
        violations.append(f"owner {owner} is not an allowed owner")
    tags = {t.get("Key"): t.get("Value") for t in image.get("Tags") or []}
    for key, want in policy.required_tags.items():
        if key not in tags:
            violations.append(f"tag {key} missing")
        elif want != "*" and tags[key] != want:
            violations.append(f"tag {key} is {tags[key]!r}, not {want!r}")
    evidence: dict[str, Any] = {"image_id": image_id, "owner": owner, "tags": tags,
                                "policy": policy.model_dump(exclude_defaults=True)}
    return outcome(not violations, **evidence, violations=violations)


def instance_type_outcome(allowed: Sequence[str] | None, instance_type: Any) -> Outcome:
    """``describe_instances``' ``InstanceType`` is one the inventory allows."""
    if not allowed:
        return "unknown", {"instance_type": instance_type, "reason":
                           "the inventory's [provisioner] declares no instance_types"}
    ok = isinstance(instance_type, str) and instance_type in allowed
    return ("pass" if ok else "fail"), {
        "instance_type": instance_type, "allowed": list(allowed),
        **({} if ok else {"reason": f"instance type {instance_type} is not allowed"})}


def architecture_outcome(expected: str, image: Mapping[str, Any] | None,
                         instance: Mapping[str, Any]) -> Outcome:
    """The image's ``Architecture`` (and the instance's, when EC2 reports it) is the
    expected one."""
    if image is None:
        return "unknown", {"reason": f"describe_images shows no image "
                                     f"{instance.get('ImageId')}: its architecture is unread"}
    seen = {"image": image.get("Architecture"),
            **({"instance": instance["Architecture"]} if "Architecture" in instance else {})}
    wrong = {k: v for k, v in seen.items() if v != expected}
    return ("fail" if wrong else "pass"), {
        "expected": expected, **seen,
        **({"reason": ", ".join(f"{k} architecture is {v}" for k, v in wrong.items())}
           if wrong else {})}


# ------------------------------------------------------------------- MessageSpace


@dataclass(frozen=True)
class SpaceAccess:
    """What one user could do under a MessageSpace prefix, seen from central.

    ``to_local``: messages the user published at central that reached a subscriber on
    the instance's local NATS; ``from_local``: messages published on the local NATS that
    reached the user's subscription at central; ``violations``: the server's permission
    errors (nats-py ``error_cb``); ``login``: the Login result, or why it failed.
    """

    user: str
    login: str
    to_local: int = 0
    from_local: int = 0
    violations: tuple[str, ...] = ()
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"user": self.user, "login": self.login, "to_local": self.to_local,
                "from_local": self.from_local,
                **({"violations": list(dict.fromkeys(self.violations))}
                   if self.violations else {}),
                **({"error": self.error} if self.error else {})}


async def space_access(central: NatsEndpoint | str, local: NatsEndpoint | str, prefix: str,
                       user: str, password: str, timeout: float = 5.0) -> SpaceAccess:
    """Log in to central as ``user`` and try both ways under ``prefix``: publish at central
    for a subscriber on the local NATS, subscribe at central to what the local NATS
    publishes. Rounds repeat until both crossed or ``timeout``."""
    central = as_endpoint(central)
    violations: list[str] = []

    async def on_error(exc: Exception) -> None:
        text = str(exc)
        if "permissions violation" in text.lower() and len(violations) < 10:
            violations.append(text.replace(password, "***")[:200])

    tls = central.ssl()
    try:
        nc = await asyncio.wait_for(nats.connect(
            central.url, user=user, password=password, allow_reconnect=False,
            **({"tls": tls, "tls_hostname": urlsplit(central.url).hostname} if tls else {}),
            inbox_prefix=f"_INBOX_{user}", max_reconnect_attempts=1, connect_timeout=2,
            error_cb=on_error), 6)
    except (TimeoutError, nats.errors.Error, OSError, ssl.SSLError) as exc:
        return SpaceAccess(user, f"{type(exc).__name__}: {exc}".replace(password, "***")[:200])
    to_local = from_local = 0
    try:
        lnc = await as_endpoint(local).connect(connect_timeout=2, max_reconnect_attempts=1)
        try:
            at_local = await lnc.subscribe(f"{prefix}.to-local")
            at_central = await nc.subscribe(f"{prefix}.from-local")
            for _ in range(2):  # two flushes: the server has registered the interest
                await lnc.flush()
                await nc.flush()
            started = time.monotonic()
            while time.monotonic() - started < timeout and not (
                    at_local.delivered and at_central.delivered):
                await nc.publish(f"{prefix}.to-local", b"space")
                await lnc.publish(f"{prefix}.from-local", b"space")
                await nc.flush()
                await lnc.flush()
                await asyncio.sleep(0.1)
            to_local, from_local = at_local.delivered, at_central.delivered
        finally:
            await lnc.close()
    except (TimeoutError, nats.errors.Error, OSError) as exc:
        return SpaceAccess(user, "accepted", to_local, from_local, tuple(violations),
                           f"{type(exc).__name__}: {exc}"[:200])
    finally:
        await nc.close()
    return SpaceAccess(user, "accepted", to_local, from_local, tuple(violations))


def space_open_outcome(prefix: str, member: SpaceAccess) -> Outcome:
    """pass: the member logged in at central and a message crossed both ways under its
    MessageSpace, with no permission refusal."""
    evidence = {"prefix": prefix, **member.as_json()}
    failure = (f"the member could not log in at central: {member.login}"
               if member.login != "accepted" else
               f"error while exchanging: {member.error}" if member.error else
               f"refused: {member.violations[0]}" if member.violations else
               "nothing crossed from central to the instance" if not member.to_local else
               "nothing crossed from the instance to central" if not member.from_local
               else None)
    return _verdict(failure, **evidence)


def space_closed_outcome(prefix: str, member: SpaceAccess,
                         other: SpaceAccess | None, no_other: str = "") -> Outcome:
    """pass: another member, logged in at central, gets nothing across the member's
    MessageSpace either way (refused or not delivered), while the member's own exchange
    crossed in the same place (the positive control)."""
    if other is None:
        return "unknown", {"prefix": prefix, "reason": no_other or "no other member"}
    evidence = {"prefix": prefix, "member": member.as_json(), "other": other.as_json()}
    if other.login != "accepted":
        return "unknown", {**evidence, "reason": f"the other member {other.user} could not "
                                                 f"log in at central: {other.login}"}
    if member.login != "accepted" or not (member.to_local and member.from_local):
        return "unknown", {**evidence, "reason": "the member's own exchange did not cross: "
                                                 "no positive control for the refusal"}
    crossed = [what for what, n in (("published into the instance", other.to_local),
                                    ("received from the instance", other.from_local)) if n]
    return outcome(not crossed, **evidence, refused=bool(other.violations),
                   **({"reason": f"{other.user} " + " and ".join(crossed) + f" under {prefix}"}
                      if crossed else {}))


# ------------------------------------------------------------------------- health

#: clock difference tolerated between this machine and the instance (seconds)
CLOCK_SKEW_S = 2.0


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


def _timestamp(value: Any) -> float | None:
    """Epoch seconds, or an ISO-8601 text (``Z`` or an offset), as epoch seconds."""
    if _number(value):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.timestamp() if parsed.tzinfo is not None else None
    return None


def health_fields_outcome(first: Mapping[str, Any], second: Mapping[str, Any],
                          event_sent_at: float, now: float) -> Outcome:
    """Every field of the seed's health structure, typed and plausible, on two reads of a
    healthy instance taken after an event was sent at ``event_sent_at``: uptime a number
    ≥ 0 that grew, local connections an int ≥ 1, central latency a number in (0, 5000)
    ms, ``last_event_at`` a timestamp in [event sent, now], memory and CPU plausible."""
    wrong: list[str] = []
    for label, body in (("first", first), ("second", second)):
        up = body.get("uptime_seconds")
        if not _number(up) or up < 0:
            wrong.append(f"{label}.uptime_seconds is {up!r}: not a number ≥ 0")
        conns = (body.get("local_nats") or {}).get("connections")
        if not isinstance(conns, int) or isinstance(conns, bool) or conns < 1:
            wrong.append(f"{label}.local_nats.connections is {conns!r}: not an int ≥ 1")
        latency = (body.get("central_nats") or {}).get("latency_ms")
        if not _number(latency) or not 0 < latency < 5000:
            wrong.append(f"{label}.central_nats.latency_ms is {latency!r}: not a number in "
                         "(0, 5000) while connected")
        vm = body.get("vault_manager") or {}
        memory, cpu = vm.get("memory_mb"), vm.get("cpu_percent")
        if not _number(memory) or not 0 < memory < 1 << 20:
            wrong.append(f"{label}.vault_manager.memory_mb is {memory!r}: not in (0, 1 TiB)")
        if not _number(cpu) or not 0 <= cpu <= 100 * 1024:
            wrong.append(f"{label}.vault_manager.cpu_percent is {cpu!r}: not a percentage")
    up1, up2 = first.get("uptime_seconds"), second.get("uptime_seconds")
    if _number(up1) and _number(up2) and not up2 > up1:
        wrong.append(f"uptime_seconds did not increase between reads ({up1} then {up2})")
    raw = second.get("last_event_at")
    at = _timestamp(raw)
    if at is None:
        wrong.append(f"last_event_at is {raw!r}: not a timestamp")
    elif not event_sent_at - CLOCK_SKEW_S <= at <= now + CLOCK_SKEW_S:
        wrong.append(f"last_event_at {raw!r} is not between the event sent "
                     f"({event_sent_at:.3f}) and now ({now:.3f})")
    evidence = {"uptime_seconds": [up1, up2],
                "connections": (second.get("local_nats") or {}).get("connections"),
                "latency_ms": (second.get("central_nats") or {}).get("latency_ms"),
                "last_event_at": raw,
                "memory_mb": (second.get("vault_manager") or {}).get("memory_mb"),
                "cpu_percent": (second.get("vault_manager") or {}).get("cpu_percent")}
    return outcome(not wrong, **evidence, wrong=wrong)


def degraded_outcome(http_status: int, body: Mapping[str, Any]) -> Outcome:
    """With the central link cut and the rest up: 503, ``degraded``, local NATS running,
    the manager healthy, central not connected with no latency, and the details naming
    the central link."""
    local = body.get("local_nats") or {}
    central = body.get("central_nats") or {}
    manager = body.get("vault_manager") or {}
    details = body.get("details") or []
    wrong = [w for w, bad in (
        (f"HTTP {http_status}, not 503", http_status != 503),
        (f"status {body.get('status')!r}, not 'degraded'", body.get("status") != "degraded"),
        (f"local_nats.status {local.get('status')!r}, not 'running'",
         local.get("status") != "running"),
        (f"vault_manager.status {manager.get('status')!r}, not 'healthy'",
         manager.get("status") != "healthy"),
        (f"central_nats.status {central.get('status')!r} while the link is cut",
         central.get("status") == "connected"),
        (f"central_nats.latency_ms {central.get('latency_ms')!r} while disconnected",
         central.get("latency_ms") is not None),
        ("details do not name the central link",
         not any("central" in str(d).lower() for d in details))) if bad]
    evidence = {"http": http_status, "status": body.get("status"), "local_nats": local,
                "central_nats": central, "vault_manager": manager.get("status"),
                "details": details}
    return outcome(not wrong, **evidence, wrong=wrong)


def recovered_outcome(http_status: int, body: Mapping[str, Any]) -> Outcome:
    """After the heal: 200, ``healthy``, central connected with a plausible latency."""
    central = body.get("central_nats") or {}
    latency = central.get("latency_ms")
    ok = (http_status == 200 and body.get("status") == "healthy"
          and central.get("status") == "connected" and _number(latency)
          and 0 < latency < 5000)
    return outcome(ok, http=http_status, status=body.get("status"), central_nats=central,
                   **({} if ok else {"details": body.get("details")}))
