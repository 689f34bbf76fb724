"""Task-list CRDT: OR-Set of tasks, monotonic task states, LWW metadata, RGA ordering.

Design: a delta-state CRDT with a causal context. Every operation has a *dot*
``(author, seq)`` (``seq`` counts the author's operations 1, 2, 3, ...), and every piece of
state it leaves behind remembers that dot:

- OR-Set: ``tags[task]`` = the dots of the adds; ``tomb[tag]`` = the dot of the remove
  that observed it. A task is present while it has a tag without a tombstone, so a remove
  only cancels the tags it saw and a concurrent add wins.
- State: ``claim[task]`` / ``done[task]`` registers, first ``(ts, agent, seq)`` wins
  (deterministic claim ties); the state is done > claimed > open, so merges never go back.
- Metadata: per task and field an LWW register, latest ``(ts, agent, seq)`` wins.
  Timestamps are hybrid (``max(wall µs, highest seen + 1)``), so an update made after
  seeing another one always wins.
- Order: RGA. A position node ``(lamport, agent)`` hangs after a parent node; siblings are
  ordered newest first. Two virtual roots: ``HEAD`` (insert at the start) and ``END`` whose
  children are ordered oldest first, so appending is O(1) and lands after everything the
  author had seen. A task's position is its highest node (``move`` adds a node). Nodes
  whose parent has not arrived yet are not rendered; such tasks go last, by id.

Every operation is a tiny state, and applying it is a join, so operations commute, are
idempotent, and need no causal buffering. ``seen`` (the causal context) holds the dots
whose effects the state contains, which gives cheap anti-entropy: a peer sends its
context, we send back exactly the pieces whose dots it lacks (``state(peer_ctx)``), plus
our context. A piece that was overwritten (a losing LWW write) is covered by the piece that
beat it, so this is complete. Sending deltas instead of the full state keeps repair
traffic proportional to what differs; the cost is a scan of the state per repair and the
context (one entry per author) in every exchange. Tombstones and nodes are never
collected (no causal-stability tracking), so state grows with the number of operations.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import blake3

Dot = tuple[str, int]
NodeId = tuple[int, str]
Scalar = str | int | float | bool | None

HEAD: NodeId = (0, "")
"""Parent for "insert at the start"; real nodes have lamport >= 1."""
END: NodeId = (0, "$")
"""Parent for "append at the end"."""

STATES = ("open", "claimed", "done")
_SECTIONS = ("tags", "tomb", "claim", "done", "meta", "nodes")


class DotContext:
    """A set of dots kept as a contiguous prefix per author plus out-of-order extras."""

    __slots__ = ("extra", "max")

    def __init__(self) -> None:
        self.max: dict[str, int] = {}
        self.extra: dict[str, set[int]] = {}

    def __contains__(self, dot: object) -> bool:
        agent, seq = dot  # type: ignore[misc]
        return seq <= self.max.get(agent, 0) or seq in self.extra.get(agent, ())

    def add(self, agent: str, seq: int) -> None:
        top = self.max.get(agent, 0)
        if seq <= top:
            return
        if seq == top + 1:
            extra = self.extra.get(agent)
            top = seq
            if extra:
                while top + 1 in extra:
                    top += 1
                    extra.discard(top)
                if not extra:
                    del self.extra[agent]
            self.max[agent] = top
        else:
            self.extra.setdefault(agent, set()).add(seq)

    def merge(self, other: DotContext) -> None:
        for agent, top in other.max.items():
            if top > self.max.get(agent, 0):
                self.max[agent] = top
                extra = self.extra.get(agent)
                if extra:
                    self.extra[agent] = {s for s in extra if s > top}
                self._compact(agent)
        for agent, seqs in other.extra.items():
            for seq in seqs:
                self.add(agent, seq)

    def _compact(self, agent: str) -> None:
        extra = self.extra.get(agent)
        if extra is None:
            return
        top = self.max.get(agent, 0)
        while top + 1 in extra:
            top += 1
            extra.discard(top)
        self.max[agent] = top
        if not extra:
            del self.extra[agent]

    def top(self, agent: str) -> int:
        """Highest seq seen from ``agent`` (gaps included)."""
        return max(self.max.get(agent, 0), max(self.extra.get(agent, ()), default=0))

    def has_dots_missing_in(self, other: DotContext) -> bool:
        """True when ``self`` holds a dot that ``other`` does not."""
        for agent, top in self.max.items():
            theirs = other.max.get(agent, 0)
            if top > theirs:
                extra = other.extra.get(agent, ())
                if top - theirs > len(extra) or any(
                        s not in extra for s in range(theirs + 1, top + 1)):
                    return True
        return any((agent, seq) not in other
                   for agent, seqs in self.extra.items() for seq in seqs)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, DotContext) and self.max == other.max
                and self.extra == other.extra)

    def __len__(self) -> int:
        return sum(self.max.values()) + sum(len(e) for e in self.extra.values())

    def to_json(self) -> dict[str, Any]:
        """``{agent: top}`` or ``{agent: [top, [extras...]]}``; sorted, so canonical."""
        out: dict[str, Any] = {}
        for agent in sorted(self.max.keys() | self.extra.keys()):
            top = self.max.get(agent, 0)
            extra = self.extra.get(agent)
            out[agent] = [top, sorted(extra)] if extra else top
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DotContext:
        ctx = cls()
        for agent, value in data.items():
            if isinstance(value, int):
                top, extra = value, ()
            else:
                top, extra = value[0], value[1]
            if top:
                ctx.max[agent] = int(top)
            for seq in extra:
                ctx.add(agent, int(seq))
        return ctx

    def copy(self) -> DotContext:
        ctx = DotContext()
        ctx.max = dict(self.max)
        ctx.extra = {a: set(s) for a, s in self.extra.items()}
        return ctx


@dataclass(frozen=True, slots=True)
class Op:
    """One operation; also a tiny delta state. ``(author, seq)`` is its dot.

    kinds: ``add`` (tag = the dot; ``node`` > 0 adds a position node after ``after``;
    ``fields`` set initial metadata), ``remove`` (``tags`` observed), ``claim``, ``done``,
    ``set`` (``fields``), ``move`` (``node`` after ``after``).
    """

    kind: str
    author: str
    seq: int
    ts: int
    task: str
    node: int = 0
    after: NodeId = END
    tags: tuple[Dot, ...] = ()
    fields: tuple[tuple[str, Scalar], ...] = ()

    @property
    def dot(self) -> Dot:
        return (self.author, self.seq)

    def to_json(self, with_author: bool = True) -> dict[str, Any]:
        """Compact JSON form. Gossip leaves the author out: it is the envelope's signer."""
        out: dict[str, Any] = {"k": self.kind, "s": self.seq, "ts": self.ts, "t": self.task}
        if with_author:
            out["a"] = self.author
        if self.node:
            out["n"] = self.node
            out["p"] = list(self.after)
        if self.tags:
            out["g"] = [list(t) for t in self.tags]
        if self.fields:
            out["f"] = dict(self.fields)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], author: str | None = None) -> Op:
        """Parse; raises ``ValueError`` on anything malformed."""
        try:
            kind = data["k"]
            if kind not in _KINDS:
                raise ValueError(f"unknown op kind {kind!r}")
            who = author if author is not None else data["a"]
            node = int(data.get("n", 0))
            after = data.get("p")
            fields = data.get("f") or {}
            if not isinstance(fields, dict):
                raise ValueError("fields must be an object")
            op = cls(kind=kind, author=str(who), seq=int(data["s"]), ts=int(data["ts"]),
                     task=str(data["t"]), node=node,
                     after=(int(after[0]), str(after[1])) if after else END,
                     tags=tuple((str(a), int(s)) for a, s in data.get("g", ())),
                     fields=_fields(fields))
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"malformed op: {exc!r}") from None
        if op.seq < 1 or (kind in ("move",) and op.node < 1) or op.node < 0:
            raise ValueError("malformed op: bad seq or node")
        return op


_KINDS = frozenset({"add", "remove", "claim", "done", "set", "move"})


def _fields(fields: Mapping[str, Scalar] | None) -> tuple[tuple[str, Scalar], ...]:
    """Validated, sorted metadata fields: string names, JSON scalar values."""
    items = tuple(sorted((fields or {}).items()))
    for name, value in items:
        if not isinstance(name, str) or not isinstance(value, str | int | float | bool | None):
            raise TypeError(f"metadata field {name!r}: names are str, values JSON scalars")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"metadata field {name!r}: non-finite float")
    return items


def _canon(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


class TaskList:
    """One replica of the shared task list. Not thread-safe; asyncio-friendly (no awaits).

    ``clock_us`` gives wall-clock microseconds (injectable for tests).
    """

    def __init__(self, replica_id: str, clock_us: Callable[[], int] | None = None) -> None:
        self.replica_id = replica_id
        self._clock = clock_us or (lambda: time.time_ns() // 1000)
        self.seen = DotContext()
        self._seq = 0
        self._lamport = 0
        self._max_ts = 0
        self._tags: dict[str, set[Dot]] = {}
        self._tomb: dict[Dot, Dot] = {}
        self._claim: dict[str, tuple[int, str, int]] = {}
        self._done: dict[str, tuple[int, str, int]] = {}
        self._meta: dict[str, dict[str, tuple[int, str, int, Scalar]]] = {}
        self._nodes: dict[NodeId, tuple[NodeId, str, int]] = {}
        self._pos: dict[str, NodeId] = {}  # task -> its highest node
        self._digest: str | None = None

    # ---- joins of single pieces (shared by apply and merge_state) -------------------

    def _j_tag(self, task: str, dot: Dot) -> None:
        tags = self._tags.get(task)
        if tags is None:
            self._tags[task] = {dot}
        else:
            tags.add(dot)

    def _j_tomb(self, tag: Dot, dot: Dot) -> None:
        old = self._tomb.get(tag)
        if old is None or dot > old:
            self._tomb[tag] = dot

    def _j_first(self, regs: dict[str, tuple[int, str, int]], task: str,
                 reg: tuple[int, str, int]) -> None:
        old = regs.get(task)
        if old is None or reg < old:
            regs[task] = reg
        if reg[0] > self._max_ts:
            self._max_ts = reg[0]

    def _j_meta(self, task: str, name: str, reg: tuple[int, str, int, Scalar]) -> None:
        fields = self._meta.get(task)
        if fields is None:
            fields = self._meta[task] = {}
        old = fields.get(name)
        if old is None or reg[:3] > old[:3]:
            fields[name] = reg
        if reg[0] > self._max_ts:
            self._max_ts = reg[0]

    def _j_node(self, nid: NodeId, parent: NodeId, task: str, seq: int) -> None:
        if nid in self._nodes:
            return
        self._nodes[nid] = (parent, task, seq)
        pos = self._pos.get(task)
        if pos is None or nid > pos:
            self._pos[task] = nid
        if nid[0] > self._lamport:
            self._lamport = nid[0]

    # ---- operations -------------------------------------------------------------------

    def apply(self, op: Op) -> bool:
        """Apply a (local or remote) operation; False if it was already applied."""
        author, seq = op.author, op.seq
        seen = self.seen
        top = seen.max.get(author, 0)
        # ``dot in seen`` and ``seen.add`` inlined: this runs once per op per local agent,
        # the fan-out that dominates a mesh worker's CPU (bench/mesh_receive.py).
        if seq <= top or seq in seen.extra.get(author, ()):
            return False
        dot = (author, seq)
        kind = op.kind
        if kind == "set" or kind == "add":
            if kind == "add":
                self._j_tag(op.task, dot)
                if op.node:
                    self._j_node((op.node, op.author), op.after, op.task, op.seq)
            for name, value in op.fields:
                self._j_meta(op.task, name, (op.ts, op.author, op.seq, value))
        elif kind == "claim":
            self._j_first(self._claim, op.task, (op.ts, op.author, op.seq))
        elif kind == "done":
            self._j_first(self._done, op.task, (op.ts, op.author, op.seq))
        elif kind == "remove":
            for tag in op.tags:
                self._j_tomb(tag, dot)
        elif kind == "move":
            self._j_node((op.node, op.author), op.after, op.task, op.seq)
        else:
            raise ValueError(f"unknown op kind {kind!r}")
        if seq == top + 1 and author not in seen.extra:
            seen.max[author] = seq
        else:
            seen.add(author, seq)
        self._digest = None
        return True

    def _next(self) -> tuple[int, int]:
        """Next own seq and hybrid timestamp."""
        self._seq = max(self._seq, self.seen.top(self.replica_id)) + 1
        ts = max(self._clock(), self._max_ts + 1)
        self._max_ts = ts
        return self._seq, ts

    def _anchor(self, after: NodeId | str) -> NodeId | None:
        """The parent node for "after ``after``"; None when that task has no position here
        yet (its add has not arrived, only a later re-add)."""
        if isinstance(after, tuple):
            return after
        return self._pos.get(after)

    def _local(self, op: Op) -> Op:
        self.apply(op)
        return op

    def add(self, fields: Mapping[str, Scalar] | None = None, after: NodeId | str = END,
            task_id: str | None = None) -> Op:
        """Add a task (or re-add ``task_id``: a new tag, add-wins over a concurrent remove).

        ``after``: ``END`` (append), ``HEAD`` (start) or a task id to insert after (appends
        when that task has no position here yet).
        """
        items = _fields(fields)
        seq, ts = self._next()
        task = task_id or f"{self.replica_id[:16]}.{seq}"
        node = 0 if task in self._pos else self._lamport + 1
        parent = (self._anchor(after) or END) if node else END
        return self._local(Op("add", self.replica_id, seq, ts, task, node, parent,
                              fields=items))

    def remove(self, task: str) -> Op | None:
        """Remove the tags observed here; None when the task is not present."""
        live = self._live_tags(task)
        if not live:
            return None
        seq, ts = self._next()
        return self._local(Op("remove", self.replica_id, seq, ts, task, tags=tuple(sorted(live))))

    def claim(self, task: str) -> Op | None:
        """Claim an open, present task; None otherwise (a concurrent claim may still win)."""
        if not self.present(task) or self.state_of(task) != "open":
            return None
        seq, ts = self._next()
        return self._local(Op("claim", self.replica_id, seq, ts, task))

    def complete(self, task: str) -> Op | None:
        if not self.present(task) or task in self._done:
            return None
        seq, ts = self._next()
        return self._local(Op("done", self.replica_id, seq, ts, task))

    def update(self, task: str, fields: Mapping[str, Scalar]) -> Op | None:
        if not self.present(task) or not fields:
            return None
        items = _fields(fields)
        seq, ts = self._next()
        return self._local(Op("set", self.replica_id, seq, ts, task, fields=items))

    def move(self, task: str, after: NodeId | str) -> Op | None:
        """Move ``task`` after ``after`` (END, HEAD or a task id with a known position)."""
        parent = None if after == task else self._anchor(after)
        if not self.present(task) or parent is None:
            return None
        seq, ts = self._next()
        return self._local(Op("move", self.replica_id, seq, ts, task, self._lamport + 1, parent))

    # ---- queries ----------------------------------------------------------------------

    def _live_tags(self, task: str) -> set[Dot]:
        return {t for t in self._tags.get(task, ()) if t not in self._tomb}

    def present(self, task: str) -> bool:
        tomb = self._tomb
        return any(t not in tomb for t in self._tags.get(task, ()))

    def state_of(self, task: str) -> str:
        if task in self._done:
            return "done"
        return "claimed" if task in self._claim else "open"

    def tasks(self) -> list[str]:
        """Present task ids in list order."""
        return [t["id"] for t in self.snapshot()]

    def _order(self) -> list[str]:
        children: dict[NodeId, list[NodeId]] = {}
        for nid, (parent, _task, _seq) in self._nodes.items():
            children.setdefault(parent, []).append(nid)
        for parent, kids in children.items():
            kids.sort(reverse=parent != END)
        out: list[str] = []
        emitted: set[str] = set()
        stack: list[NodeId] = list(reversed(children.get(END, ())))
        stack.extend(reversed(children.get(HEAD, ())))  # HEAD's subtree first
        nodes, pos = self._nodes, self._pos
        while stack:
            nid = stack.pop()
            task = nodes[nid][1]
            if pos.get(task) == nid and task not in emitted and self.present(task):
                emitted.add(task)
                out.append(task)
            stack.extend(reversed(children.get(nid, ())))
        rest = sorted(t for t in self._tags if t not in emitted and self.present(t))
        return out + rest

    def snapshot(self) -> list[dict[str, Any]]:
        """Canonical plain view: present tasks in order with state and metadata."""
        view = []
        for task in self._order():
            claim, done = self._claim.get(task), self._done.get(task)
            view.append({
                "id": task,
                "state": self.state_of(task),
                "claimed_by": claim[1] if claim else None,
                "done_by": done[1] if done else None,
                "meta": {k: r[3] for k, r in sorted(self._meta.get(task, {}).items())},
            })
        return view

    # ---- state-based side: deltas, merge, digest ---------------------------------------

    def state(self, exclude: DotContext | None = None) -> dict[str, Any]:
        """JSON-able state: every piece, or only those whose dot ``exclude`` lacks (a delta).

        Always carries this replica's full context as ``ctx``; applying the delta to a peer
        whose context is ``exclude`` makes it contain everything ``ctx`` names.
        """
        skip: Callable[[Dot], bool] = (lambda d: False) if exclude is None else (
            lambda d: d in exclude)
        return {
            "tags": [[task, a, s] for task, tags in self._tags.items() for (a, s) in tags
                     if not skip((a, s))],
            "tomb": [[ta, tseq, a, s] for (ta, tseq), (a, s) in self._tomb.items()
                     if not skip((a, s))],
            "claim": [[task, ts, a, s] for task, (ts, a, s) in self._claim.items()
                      if not skip((a, s))],
            "done": [[task, ts, a, s] for task, (ts, a, s) in self._done.items()
                     if not skip((a, s))],
            "meta": [[task, name, ts, a, s, v] for task, fields in self._meta.items()
                     for name, (ts, a, s, v) in fields.items() if not skip((a, s))],
            "nodes": [[lam, a, s, list(parent), task]
                      for (lam, a), (parent, task, s) in self._nodes.items()
                      if not skip((a, s))],
            "ctx": self.seen.to_json(),
        }

    def delta_for(self, peer: DotContext) -> dict[str, Any] | None:
        """The pieces ``peer`` lacks, or None when it lacks nothing."""
        if not self.seen.has_dots_missing_in(peer):
            return None
        return self.state(exclude=peer)

    def merge_state(self, data: Mapping[str, Any], *, with_ctx: bool = True) -> int:
        """Join a state or delta; returns the number of pieces read.

        ``with_ctx=False`` joins the pieces but not the context (a partial chunk of a delta:
        the context may only be adopted once every piece it covers has arrived).
        """
        try:
            n = 0
            for task, a, s in data.get("tags", ()):
                self._j_tag(task, (a, s))
                n += 1
            for ta, tseq, a, s in data.get("tomb", ()):
                self._j_tomb((ta, tseq), (a, s))
                n += 1
            for task, ts, a, s in data.get("claim", ()):
                self._j_first(self._claim, task, (ts, a, s))
                n += 1
            for task, ts, a, s in data.get("done", ()):
                self._j_first(self._done, task, (ts, a, s))
                n += 1
            for task, name, ts, a, s, v in data.get("meta", ()):
                self._j_meta(task, name, (ts, a, s, v))
                n += 1
            for lam, a, s, parent, task in data.get("nodes", ()):
                self._j_node((lam, a), (parent[0], parent[1]), task, s)
                n += 1
            if with_ctx and "ctx" in data:
                self.seen.merge(DotContext.from_json(data["ctx"]))
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"malformed state: {exc!r}") from None
        finally:
            self._digest = None
        return n

    def merge(self, other: TaskList) -> None:
        """State-based join with another replica (anti-entropy with the full state)."""
        self.merge_state(other.state())

    def canonical(self) -> bytes:
        """Canonical bytes of the whole state (pieces and context)."""
        state = self.state()
        for key in _SECTIONS:
            state[key].sort()  # rows are unique on their leading fields
        return _canon(state)

    def digest(self) -> str:
        """BLAKE3 hex of ``canonical()``; cached until the state changes."""
        if self._digest is None:
            self._digest = blake3.blake3(self.canonical()).hexdigest()
        return self._digest

    def copy(self) -> TaskList:
        clone = TaskList(self.replica_id, self._clock)
        clone.merge_state(self.state())
        clone._seq = self._seq
        return clone

    def __len__(self) -> int:
        return sum(1 for t in self._tags if self.present(t))


def split_state(state: Mapping[str, Any], max_bytes: int) -> Iterator[dict[str, Any]]:
    """Split a state's pieces into chunks of roughly at most ``max_bytes`` of JSON each.

    Chunks carry no ``ctx``: the receiver adopts the context once all chunks arrived.
    """
    chunk: dict[str, list[Any]] = {}
    size = 2
    for section in _SECTIONS:
        for row in state.get(section, ()):
            row_size = len(_canon(row)) + 1
            if chunk and size + row_size > max_bytes:
                yield chunk
                chunk, size = {}, 2
            chunk.setdefault(section, []).append(row)
            size += row_size + (len(section) + 5 if len(chunk[section]) == 1 else 0)
    if chunk:
        yield chunk


def pieces(state: Mapping[str, Any]) -> int:
    return sum(len(state.get(s, ())) for s in _SECTIONS)
