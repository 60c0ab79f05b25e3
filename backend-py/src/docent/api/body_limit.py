"""Refuse request bodies over the limit before they are read whole.

A declared `Content-Length` over the limit is answered at once; a body streamed without
one is counted as it arrives and cut off the moment it passes the limit. Either way the
client gets Docent's own 413 `{"error": "too_large", ...}` (FastAPI would turn an error
raised while it parses a body into a 400, so this middleware answers by itself).
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docent.api.errors import error_response


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, "too_large", self._detail())(scope, receive, send)
            return
        received = 0
        answered = False

        async def counted() -> Message:
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # Answer now and tell the app the client left: it stops reading, and
                # whatever it tries to send afterwards is dropped.
                answered = True
                await error_response(413, "too_large", self._detail())(scope, receive, send)
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

    def _detail(self) -> str:
        return f"the request body is larger than the {self.max_bytes} byte limit"
