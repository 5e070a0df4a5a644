#!/usr/bin/env python3
"""A webhook receiver on loopback for deploy/podman-test.sh.

Answers every POST with 204 and appends one JSON line per request to LOG:
{"event_id": <X-Borderwatch-Event-Id>, "surges": [ids of the surges the body carries]}.
A body is a surge (its "id") or a digest (a story or summary: "surges": [{"id": ...}]).

Usage: webhook_receiver.py PORT LOG   (listens on 127.0.0.1 only)
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def surge_ids(body):
    """The surge ids a delivered body carries (a digest lists several)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    if isinstance(doc.get("surges"), list):
        return [s.get("id") for s in doc["surges"] if isinstance(s, dict)]
    return [doc["id"]] if "id" in doc else []


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        line = json.dumps(
            {
                "event_id": self.headers.get("X-Borderwatch-Event-Id"),
                "surges": surge_ids(body),
            }
        )
        with LOCK, open(self.server.log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    port, log_path = int(sys.argv[1]), sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.log_path = log_path
    server.serve_forever()


if __name__ == "__main__":
    main()
