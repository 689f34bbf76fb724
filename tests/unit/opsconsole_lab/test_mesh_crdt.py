"""Task-list CRDT examples: ordering, LWW and claim tie-breaks, op encoding, validation."""

from __future__ import annotations

import pytest

from opsconsole_lab.mesh.crdt import END, HEAD, DotContext, Op, TaskList

A, B = "aa" * 32, "bb" * 32


def fixed(ts: int) -> TaskList:
    return TaskList(A, lambda: ts)


def titles(r: TaskList) -> list[str]:
    return [t["meta"]["title"] for t in r.snapshot()]


def test_append_start_and_insert_after() -> None:
    r = TaskList(A)
    one = r.add({"title": "1"}).task
    r.add({"title": "3"})
    r.add({"title": "0"}, after=HEAD)
    r.add({"title": "2"}, after=one)
    r.add({"title": "4"}, after=END)
    assert titles(r) == ["0", "1", "2", "3", "4"]
    assert r.move(one, after=END) is not None
    assert titles(r) == ["0", "2", "3", "4", "1"]


def test_concurrent_inserts_after_the_same_task_order_the_same_everywhere() -> None:
    a = TaskList(A)
    anchor = a.add({"title": "anchor"})
    b = TaskList(B)
    b.apply(anchor)
    ops = [a.add({"title": "from a"}, after=anchor.task),
           b.add({"title": "from b"}, after=anchor.task),
           a.add({"title": "a end"}), b.add({"title": "b end"})]
    for op in ops:
        a.apply(op)
        b.apply(op)
    assert a.snapshot() == b.snapshot()
    order = titles(a)
    assert order[0] == "anchor" and set(order[1:3]) == {"from a", "from b"}
    assert order[3:] == ["a end", "b end"]  # same lamport: agent id decides


def test_lww_latest_wins_and_equal_timestamps_break_by_agent_id() -> None:
    a, b = TaskList(A, lambda: 100), TaskList(B, lambda: 100)
    add = a.add({"title": "t"})
    b.apply(add)
    ua, ub = a.update(add.task, {"title": "by a"}), b.update(add.task, {"title": "by b"})
    assert ua and ub and ua.ts == ub.ts  # both saw the add, same hybrid timestamp
    for r in (a, b):
        r.apply(ua)
        r.apply(ub)
        assert r.snapshot()[0]["meta"]["title"] == "by b"  # B > A
    later = a.update(add.task, {"title": "later"})  # hybrid clock: after what a saw
    b.apply(later)
    assert b.snapshot()[0]["meta"]["title"] == "later"


def test_first_claim_wins_and_states_only_move_forward() -> None:
    a, b = TaskList(A, lambda: 5), TaskList(B, lambda: 9)
    add = a.add({"title": "t"})
    b.apply(add)
    cb = b.claim(add.task)
    ca = a.claim(add.task)
    assert ca and cb
    for r in (a, b):
        r.apply(ca)
        r.apply(cb)
        assert r.snapshot()[0]["claimed_by"] == A  # earlier timestamp
    assert a.claim(add.task) is None  # already claimed here
    done = b.complete(add.task)
    a.apply(done)  # type: ignore[arg-type]
    assert a.state_of(add.task) == "done" and a.complete(add.task) is None


def test_op_json_round_trip_and_rejects_garbage() -> None:
    r = TaskList(A)
    op = r.add({"title": "x", "n": 1.5, "ok": True, "none": None}, after=HEAD)
    assert Op.from_json(op.to_json()) == op
    assert Op.from_json(op.to_json(with_author=False), author=A) == op
    for bad in ({}, {"k": "nope", "s": 1, "ts": 1, "t": "x", "a": A},
                {"k": "set", "s": 0, "ts": 1, "t": "x", "a": A},
                {"k": "set", "s": 1, "ts": 1, "t": "x", "a": A, "f": {"x": [1]}},
                {"k": "move", "s": 1, "ts": 1, "t": "x", "a": A}):
        with pytest.raises((ValueError, TypeError)):
            Op.from_json(bad)
    with pytest.raises(TypeError):
        r.update(op.task, {"x": {"nested": 1}})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        r.update(op.task, {"x": float("nan")})


def test_dot_context_compacts_out_of_order_dots() -> None:
    ctx = DotContext()
    for seq in (3, 1, 5, 2):
        ctx.add(A, seq)
    assert ctx.max == {A: 3} and ctx.extra == {A: {5}} and (A, 5) in ctx and (A, 4) not in ctx
    other = DotContext.from_json({A: 4, B: [0, [2]]})
    assert ctx.has_dots_missing_in(other) and other.has_dots_missing_in(ctx)
    ctx.merge(other)
    assert ctx.to_json() == {A: 5, B: [0, [2]]} and len(ctx) == 6


def test_restarted_replica_continues_its_sequence_after_a_sync() -> None:
    old = TaskList(A)
    old.add({"title": "before restart"})
    fresh = TaskList(A)
    fresh.merge(old)  # one anti-entropy round before issuing ops
    op = fresh.add({"title": "after"})
    assert op.seq == 2 and old.apply(op)
