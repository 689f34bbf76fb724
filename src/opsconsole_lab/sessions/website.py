"""The small static site an edit container maintains in ``<workspace>/site``.

Pages are ``site/pages/<slug>.html``; ``site/index.html`` is regenerated from them.
Files on disk are session-independent (they are committed); the container injects the
``<base>`` tag and the HMR script only when serving.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from .instructions import Instruction, InstructionError

SITE = "site"
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)


def site_dir(workspace: Path) -> Path:
    return workspace / SITE


def render_page(title: str, text: str) -> str:
    t = html.escape(title)
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\n"
            f"<body><h1>{t}</h1>\n<main>{html.escape(text)}</main>\n"
            f"<p><a href=\"index.html\">all pages</a></p></body></html>\n")


def render_index(pages: list[tuple[str, str]]) -> str:
    items = "\n".join(f'<li><a href="pages/{slug}.html">{html.escape(title)}</a></li>'
                      for slug, title in pages) or "<li>No pages yet.</li>"
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Preview</title></head>\n"
            f"<body><h1>Preview</h1>\n<ul>\n{items}\n</ul></body></html>\n")


def pages(workspace: Path) -> list[tuple[str, str]]:
    """(slug, title) of every page, sorted by slug."""
    out = []
    for f in sorted((site_dir(workspace) / "pages").glob("*.html")):
        m = _TITLE.search(f.read_text(encoding="utf-8"))
        out.append((f.stem, html.unescape(m[1]) if m else f.stem))
    return out


def init_site(workspace: Path) -> None:
    (site_dir(workspace) / "pages").mkdir(parents=True, exist_ok=True)
    index = site_dir(workspace) / "index.html"
    if not index.exists():
        index.write_text(render_index(pages(workspace)), encoding="utf-8")


def apply(workspace: Path, ins: Instruction) -> list[str]:
    """Apply one instruction; return the site-relative paths it changed."""
    page = site_dir(workspace) / "pages" / f"{ins.slug}.html"
    rel = f"pages/{ins.slug}.html"
    if ins.action == "create":
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(render_page(ins.title, ins.text), encoding="utf-8")
    elif ins.action == "update":
        if not page.exists():
            raise InstructionError(f"no page {ins.title!r} to update")
        page.write_text(render_page(pages_title(page) or ins.title, ins.text), encoding="utf-8")
    else:
        if not page.exists():
            raise InstructionError(f"no page {ins.title!r} to delete")
        page.unlink()
    (site_dir(workspace) / "index.html").write_text(render_index(pages(workspace)),
                                                    encoding="utf-8")
    return [rel, "index.html"]


def pages_title(page: Path) -> str | None:
    m = _TITLE.search(page.read_text(encoding="utf-8"))
    return html.unescape(m[1]) if m else None
