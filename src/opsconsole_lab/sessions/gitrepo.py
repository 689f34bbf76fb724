"""The workspace's git repository, driven through the ``git`` CLI (asyncio subprocesses).

The operator's global and system git config (hooks, signing, templates) is ignored so a
lab commit never prompts, signs or runs hooks.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C"}


class GitError(RuntimeError):
    pass


class GitRepo:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def run(self, *args: str, check: bool = True) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "git", *args, cwd=self.path, env={**os.environ, **_ENV},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if check and proc.returncode != 0:
            raise GitError(f"git {args[0]} failed ({proc.returncode}): "
                           f"{err.decode(errors='replace').strip()[:300]}")
        return proc.returncode or 0, out.decode(errors="replace")

    async def ensure(self) -> None:
        """Create the repo if missing; clear a lock left by a container killed mid-commit.

        Only one container holds a workspace at a time (the container takes a file
        lock on it first), so a lock found here is stale.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        if not (self.path / ".git").is_dir():
            await self.run("init", "-q", "-b", "main")
        (self.path / ".git" / "index.lock").unlink(missing_ok=True)
        for key, value in (("user.name", "opsconsole edit container"),
                           ("user.email", "edit-container@sessions.lab.invalid"),
                           ("commit.gpgsign", "false")):
            await self.run("config", "--local", key, value)

    async def head(self) -> str | None:
        code, out = await self.run("rev-parse", "--verify", "-q", "HEAD", check=False)
        return out.strip() if code == 0 else None

    async def commit_all(self, message: str) -> str | None:
        """Stage everything and commit; None when nothing changed."""
        await self.run("add", "-A")
        code, _ = await self.run("diff", "--cached", "--quiet", check=False)
        if code == 0 and await self.head() is not None:
            return None
        await self.run("commit", "-q", "--allow-empty", "-m", message)
        return await self.head()

    async def has_commit_mentioning(self, marker: str) -> bool:
        if await self.head() is None:
            return False
        _, out = await self.run("log", "--format=%H", "-F", f"--grep={marker}")
        return bool(out.strip())

    async def log(self, limit: int = 50) -> list[dict[str, object]]:
        if await self.head() is None:
            return []
        _, out = await self.run("log", f"-n{limit}", "--format=%H%x1f%ct%x1f%s")
        rows = []
        for line in out.splitlines():
            sha, ts, subject = line.split("\x1f", 2)
            rows.append({"sha": sha, "time": int(ts), "subject": subject})
        return rows
