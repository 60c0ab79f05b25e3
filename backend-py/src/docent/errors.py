"""Domain errors: raised anywhere, mapped to HTTP in one place (`docent.api.errors`)."""

from typing import ClassVar


class DocentError(Exception):
    """An error the caller can act on; `code` is stable, `detail` is for people."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]


class BadInput(DocentError):
    status = 400
    code = "bad_input"


class Unauthorized(DocentError):
    status = 401
    code = "unauthorized"


class NotFound(DocentError):
    status = 404
    code = "not_found"


class Conflict(DocentError):
    status = 409
    code = "conflict"


class UpstreamFailed(DocentError):
    status = 502
    code = "upstream_failed"


class Unavailable(DocentError):
    status = 503
    code = "unavailable"
