"""A local HTTP server standing in for the LangSmith API: it accepts what the real
`langsmith` client sends (run batches as JSON or multipart, feedback) and keeps it."""

import email.parser
import email.policy
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers import LoopbackServer, send_json


class LangSmithStandIn(LoopbackServer):
    def __init__(self) -> None:
        self.bodies: list[bytes] = []  # everything received, to search for leaked secrets
        self.runs: dict[str, dict[str, Any]] = {}  # run id -> the run, with later patches merged in
        self.feedback: list[dict[str, Any]] = []
        self.api_keys: set[str] = set()
        self.project = {
            "id": str(uuid.uuid4()),
            "name": "docent",
            "tenant_id": str(uuid.uuid4()),
            "reference_dataset_id": None,
        }
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/sessions"):
                    send_json(self, [owner.project])
                    return
                send_json(self, {"version": "0.0-standin", "batch_ingest_config": {}} if self.path == "/info" else {})

            def do_POST(self) -> None:
                owner._receive(self)

            def do_PATCH(self) -> None:
                owner._receive(self)

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(Handler)

    def _receive(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("content-length", 0)))
        with self.lock:
            self.bodies.append(body)
            self.api_keys.add(handler.headers.get("x-api-key", ""))
            path = handler.path.split("?")[0]
            if path == "/runs/multipart":
                self._multipart(handler.headers["content-type"], body)
            elif path == "/runs/batch":
                batch = json.loads(body)
                for run in batch.get("post", []) + batch.get("patch", []):
                    self._merge(run)
            elif path == "/runs":
                self._merge(json.loads(body))
            elif path.startswith("/runs/"):
                self._merge({"id": path.split("/")[2], **json.loads(body)})
            elif path == "/feedback":
                self.feedback.append(json.loads(body))
        send_json(handler, {})

    def _multipart(self, content_type: str, body: bytes) -> None:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = json.loads(bytes(part.get_payload(decode=True)))
            _operation, run_id, *field = str(name).split(".")
            self._merge({"id": run_id, **({field[0]: payload} if field else payload)})

    def _merge(self, run: dict[str, Any]) -> None:
        self.runs.setdefault(str(run["id"]), {}).update({k: v for k, v in run.items() if v is not None})

    def children(self, trace_id: str) -> list[dict[str, Any]]:
        return [r for r in self.runs.values() if str(r.get("trace_id")) == trace_id and str(r["id"]) != trace_id]
