"""A local HTTP server standing in for Supabase Auth (GoTrue) as supabase-js talks to it from
a browser: CORS, password sign-in (`POST /auth/v1/token?grant_type=password`) and sign-out.
Its access tokens are what a project with a legacy HS256 secret issues."""

import json
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers import LoopbackServer, claims, hs256, send_json


class SupabaseAuthStandIn(LoopbackServer):
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.accounts: dict[str, tuple[str, uuid.UUID]] = {}  # email -> (password, auth.users id)
        self.sign_ins = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_OPTIONS(self) -> None:  # the browser's CORS preflight
                self.send_response(204)
                owner._cors(self)
                self.end_headers()

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                if self.path == "/auth/v1/token?grant_type=password":
                    status, payload = owner._password(body)
                else:  # /auth/v1/logout and anything else: accepted, nothing to say
                    status, payload = 204, None
                self.send_response(status)
                owner._cors(self)
                if payload is None:
                    self.end_headers()
                    return
                data = json.dumps(payload).encode()
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                send_json(self, {"error": "not implemented by the stand-in"}, status=404)

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(Handler)

    def _cors(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_header("access-control-allow-origin", handler.headers.get("origin", "*"))
        handler.send_header("access-control-allow-methods", "GET, POST, PUT, DELETE, OPTIONS")
        handler.send_header("access-control-allow-headers", handler.headers.get("access-control-request-headers", "*"))

    def _password(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        account = self.accounts.get(str(body.get("email")))
        if account is None or account[0] != body.get("password"):
            return 400, {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}
        self.sign_ins += 1
        email, user_id = str(body["email"]), account[1]
        now = int(time.time())
        token = hs256(claims(user_id, iss=f"{self.url}/auth/v1", email=email), self.secret, typ="JWT")
        user = {
            "id": str(user_id),
            "aud": "authenticated",
            "role": "authenticated",
            "email": email,
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {},
            "created_at": "2026-01-01T00:00:00Z",
        }
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": 3600,
            "expires_at": now + 3600,
            "refresh_token": uuid.uuid4().hex,
            "user": user,
        }
