"""The sessions workspace's git repository: commits and markers, with the real git."""

from __future__ import annotations

from pathlib import Path

from opsconsole_lab.sessions.gitrepo import GitRepo


async def test_git_repo_commits_and_finds_markers(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "ws")
    await repo.ensure()
    (tmp_path / "ws" / ".git" / "index.lock").write_text("")  # left by a killed container
    await repo.ensure()
    (tmp_path / "ws" / "a.txt").write_text("a")
    sha = await repo.commit_all("first\n\n[msg m-1]")
    assert sha and await repo.commit_all("nothing changed") is None
    assert await repo.has_commit_mentioning("[msg m-1]")
    assert not await repo.has_commit_mentioning("[msg m-2]")
    assert [c["subject"] for c in await repo.log()] == ["first"]


