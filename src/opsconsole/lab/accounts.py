"""The lab's NATS account helper: how the reference provisioner grants and revokes accounts.

The reference provisioning service (``opsconsole_lab.provisioning``) imports nothing of the
console; the lab launches it with this module as its ``--accounts-command``. The
provisioner starts the helper once and writes one JSON line per change on its stdin::

    {"member": "bob", "active": false}   ->   {"ok": true}
                                              {"ok": false, "error": "<one line>"}

Each change is :meth:`Lab.set_member_account`: central's NATS auth rewritten and reloaded
under the lab's lock (a revoked member's connections drop at once). The table the
provisioner reads back (who is active, with which password) is the secret file
``MEMBER_ACCOUNTS_FILE``, rewritten atomically with every config. The helper exits when its
stdin closes (the provisioner stopped or died).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from .supervisor import Lab


async def apply(lab: Lab, line: str) -> dict[str, Any]:
    """One request line -> its reply (never raises)."""
    try:
        request = json.loads(line)
        member, active = request["member"], request["active"]
        if not isinstance(member, str) or not isinstance(active, bool):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return {"ok": False, "error": 'a request is one line {"member": str, "active": bool}'}
    if member not in lab.spec.members:
        return {"ok": False, "error": f"no member {member!r} in the lab"}
    try:
        await lab.set_member_account(member, active)
    except Exception as exc:  # one line back; the provisioner answers 500 with it
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    return {"ok": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsconsole.lab.accounts")
    parser.add_argument("--lab-dir", required=True)
    args = parser.parse_args(argv)
    replies, sys.stdout = sys.stdout, sys.stderr  # nothing but replies on the protocol pipe
    lab = Lab.attach(args.lab_dir)
    for line in sys.stdin:
        if line.strip():
            replies.write(json.dumps(asyncio.run(apply(lab, line))) + "\n")
            replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
