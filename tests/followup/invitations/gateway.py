"""A fake SMS/WeChat gateway: a real HTTP server on 127.0.0.1 (ephemeral port) in a thread, recording what it
receives and answering as told: accepted with a message id, an error status, or no answer (past the timeout)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeGateway:
    def __init__(self):
        self.requests: list[dict] = []
        #: "accept", an HTTP status (500, 400…), or "hang" (answer only after `hang_seconds`).
        self.mode: str | int = "accept"
        self.hang_seconds = 2.0
        #: The error text of a refusal, formatted with the request's JSON (e.g. "to {phone}: {text}").
        self.says = "refused {text:.40}"
        self.answered = 0
        self._release = threading.Event()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gateway.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                         "json": json.loads(body)})
                mode = gateway.mode
                if mode == "hang":
                    gateway._release.wait(gateway.hang_seconds)
                    status, answer = 200, {"message_id": "too-late"}
                elif mode == "accept":
                    gateway.answered += 1
                    status, answer = 200, {"message_id": f"gw-{gateway.answered}"}
                else:
                    status, answer = int(mode), {"error": gateway.says.format(**json.loads(body))}
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (a timeout): nothing to answer
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def bodies(self) -> list[dict]:
        return [r["json"] for r in self.requests]
