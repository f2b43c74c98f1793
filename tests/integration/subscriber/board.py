"""A neighbourhood board to post to: a real HTTP server on a free port that keeps what it received."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Board:
    posts: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    fail_next: int = 0

    def __enter__(self) -> Board:
        board = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if board.fail_next:
                    board.fail_next -= 1
                    self.send_response(503)
                else:
                    board.posts.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                    self.send_response(201)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/posts"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
