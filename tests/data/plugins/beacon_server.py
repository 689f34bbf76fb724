"""The beacon the example plugin tests: ``python beacon_server.py PORT_FILE [--deaf]``.

Binds 127.0.0.1 on a free port and writes it to PORT_FILE. ``--deaf`` ignores
``/admin/silence`` (a beacon that cannot be silenced: the scenario's negative control).
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SILENT = False
DEAF = "--deaf" in sys.argv


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._answer(404 if self.path != "/health" else 503 if SILENT else 200)

    def do_POST(self) -> None:
        global SILENT
        if self.path == "/admin/silence":
            SILENT = not DEAF
        elif self.path == "/admin/speak":
            SILENT = False
        else:
            self._answer(404)
            return
        self._answer(200)

    def log_message(self, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
Path(sys.argv[1]).write_text(str(server.server_address[1]))
server.serve_forever()
