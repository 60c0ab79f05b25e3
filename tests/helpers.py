"""Small builders the tests share: databases, users, tokens, a JWKS server."""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, Self

import jwt
import psycopg
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from docent.settings import LOCAL_JWT_SECRET

SECRET = LOCAL_JWT_SECRET


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(user_id: uuid.UUID | str, **overrides: Any) -> dict[str, Any]:
    """The claim set Supabase Auth issues, valid for an hour, with `overrides` applied (None removes)."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": "http://127.0.0.1:54321/auth/v1",
        "sub": str(user_id),
        "aud": "authenticated",
        "exp": now + 3600,
        "iat": now,
        "email": f"{user_id}@example.com",
        "role": "authenticated",
        "aal": "aal1",
        "session_id": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def hs256(payload: dict[str, Any], secret: str | bytes = SECRET, **headers: Any) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers or None)


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, for shapes no JWT library will produce."""
    parts = (json.dumps(header).encode(), json.dumps(payload).encode(), signature)
    return ".".join(b64url(part) for part in parts)


class KeyPair:
    def __init__(self, kid: str, algorithm: str = "ES256") -> None:
        self.kid = kid
        self.algorithm = algorithm
        self.private = ec.generate_private_key(ec.SECP256R1()) if algorithm == "ES256" else _rsa()
        self.public = self.private.public_key()

    def sign(self, payload: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(payload, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **headers})

    def jwk(self) -> dict[str, Any]:
        if isinstance(self.public, ec.EllipticCurvePublicKey):
            exported = jwt.algorithms.ECAlgorithm.to_jwk(self.public)
        else:
            exported = jwt.algorithms.RSAAlgorithm.to_jwk(self.public)
        key: dict[str, Any] = json.loads(exported)
        return {**key, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 (a free port), served from a thread while `running()`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @contextmanager
    def running(self) -> Iterator[Self]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def send_json(handler: BaseHTTPRequestHandler, payload: object, status: int = 200) -> None:
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class JwksServer(LoopbackServer):
    """Publishes a JWKS at Supabase's path; keys and health are mutable."""

    def __init__(self) -> None:
        self.keys: list[KeyPair] = []
        self.fetches = 0
        self.down = False
        self.hang = threading.Event()  # cleared: requests wait until it is set again
        self.hang.set()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                owner.hang.wait(10)
                if owner.down or self.path != "/auth/v1/.well-known/jwks.json":
                    self.send_response(503 if owner.down else 404)
                    self.end_headers()
                    return
                send_json(self, {"keys": [key.jwk() for key in owner.keys]})

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(Handler)
        self.jwks_url = f"{self.url}/auth/v1/.well-known/jwks.json"


def create_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"'.encode())
    return admin_url.replace("/postgres?", f"/{name}?")


def create_user(url: str, email: str | None = None) -> uuid.UUID:
    """An `auth.users` row, as Supabase Auth would have created it."""
    user_id = uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email, aud, role) values (%s, %s, 'authenticated', 'authenticated')",
            (user_id, email or f"{user_id}@example.com"),
        )
    return user_id


def insert_run(
    conn: psycopg.Connection[Any], run_id: uuid.UUID, thread_id: Any, user_id: uuid.UUID, status: str
) -> None:
    """A `runs` row as another process (or a dead one) would have left it."""
    conn.execute(
        "insert into runs (id, thread_id, user_id, assistant_id, status) values (%s, %s, %s, 'docent', %s)",
        (run_id, thread_id, user_id, status),
    )


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_ready(base: str, process: "subprocess.Popen[str]", timeout: float = 60.0) -> None:
    """Poll /health/ready until it answers 200; fail early if the process dies."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"docent exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling interval while the process starts, not a stand-in for synchronisation
    raise AssertionError(f"{base} not ready after {timeout}s")


DOCENT = [sys.executable, "-m", "docent.cli"]


@contextmanager
def serve_process(
    env: dict[str, str], *, log: "IO[str] | None" = None, port: int | None = None, own_group: bool = False
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`docent serve` in a child process; its output is piped, or written to `log` (a long
    test's request log would fill a pipe nobody reads). With `own_group`, in a process group
    of its own, as in a terminal."""
    port = port or free_port()
    process = subprocess.Popen(
        [*DOCENT, "serve"],
        env={**os.environ, **env, "PORT": str(port)},
        stdout=log or subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=own_group,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, process)
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)
        if process.stdout:
            process.stdout.close()
