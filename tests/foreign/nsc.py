"""What ``nsc`` does for an operator, in a few lines: an operator, an account and users as
nkeys and signed JWTs, written as ``.creds`` files (JWT + seed), for a server in operator
mode (``operator:`` + a ``MEMORY`` resolver preloaded with the account)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import nkeys


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _keypair(prefix: int) -> tuple[nkeys.KeyPair, bytes]:
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return nkeys.from_seed(seed), seed


def _jwt(signer: nkeys.KeyPair, subject: nkeys.KeyPair, name: str, nats: dict,
         expires: int | None = None) -> str:
    claims = {"jti": "", "iat": int(time.time()), "iss": signer.public_key.decode(),
              "name": name, "sub": subject.public_key.decode(), "nats": {**nats, "version": 2}}
    if expires is not None:
        claims["exp"] = expires
    claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims).encode()).digest()
                                     ).decode().rstrip("=")
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signer.sign(f'{head}.{body}'.encode()))}"


@dataclass
class Operator:
    jwt: str
    account_public: str
    account_jwt: str
    _account: nkeys.KeyPair

    def user_creds(self, path: Path, name: str, expires: int | None = None,
                   allow: list[str] | None = None) -> Path:
        user, seed = _keypair(nkeys.PREFIX_BYTE_USER)
        perms = {"pub": {"allow": allow}, "sub": {"allow": allow}} if allow else \
            {"pub": {}, "sub": {}}
        token = _jwt(self._account, user, name, {"type": "user", **perms, "subs": -1,
                                                  "data": -1, "payload": -1}, expires)
        path.write_text(f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT"
                        "------\n\n************************* IMPORTANT *************************"
                        f"\n\n-----BEGIN USER NKEY SEED-----\n{seed.decode()}\n------END USER "
                        "NKEY SEED------\n")
        path.chmod(0o600)
        return path


def operator(account: str = "TENANT") -> Operator:
    op, _ = _keypair(nkeys.PREFIX_BYTE_OPERATOR)
    acc, _ = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    limits = {"subs": -1, "conn": -1, "leaf": -1, "imports": -1, "exports": -1, "data": -1,
              "payload": -1, "wildcards": True}
    return Operator(_jwt(op, op, "foreign-operator", {"type": "operator"}),
                    acc.public_key.decode(),
                    _jwt(op, acc, account, {"type": "account", "limits": limits}), acc)
