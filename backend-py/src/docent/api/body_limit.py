"""Refuse request bodies over the limit before they are read whole.

Uploads (multipart forms) may be as large as the upload limit; every other body (JSON) at
most MAX_OTHER_BYTES, far above the largest body a route takes (a 16,000-character message
with 8 kB of metadata) and small enough that parsing it costs little, before the token
is checked too (FastAPI reads a body before it resolves the route's dependencies).

A declared `Content-Length` over the limit is answered at once; a body streamed without
one is counted as it arrives and cut off the moment it passes the limit. Either way the
client gets Docent's own 413 `{"error": "too_large", ...}` (FastAPI would turn an error
raised while it parses a body into a 400, so this middleware answers by itself).
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docent.api.errors import error_response

MAX_OTHER_BYTES = 1024 * 1024


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_upload_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        upload = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.max_upload_bytes if upload else MAX_OTHER_BYTES
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await error_response(413, "too_large", _detail(limit))(scope, receive, send)
            return
        received = 0
        answered = False

        async def counted() -> Message:
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                # Answer now and tell the app the client left: it stops reading, and
                # whatever it tries to send afterwards is dropped.
                answered = True
                await error_response(413, "too_large", _detail(limit))(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def unless_answered(message: Message) -> None:
            if not answered:
                await send(message)

        try:
            await self.app(scope, counted, unless_answered)
        except Exception:
            if not answered:
                raise


def _detail(limit: int) -> str:
    return f"the request body is larger than the {limit} byte limit"
