"""Domain errors: raised anywhere, mapped to HTTP in one place (`docent.api.errors`)."""

from typing import ClassVar


class DocentError(Exception):
    """An error the caller can act on; `code` is stable, `detail` is for people."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code: str = code or type(self).default_code


class BadInput(DocentError):
    status = 400
    default_code = "bad_input"


class Unauthorized(DocentError):
    status = 401
    default_code = "unauthorized"


class NotFound(DocentError):
    status = 404
    default_code = "not_found"


class Conflict(DocentError):
    status = 409
    default_code = "conflict"


class UpstreamFailed(DocentError):
    status = 502
    default_code = "upstream_failed"


class InvalidContent(BadInput):
    status = 422
    default_code = "invalid_content"


class TooLarge(DocentError):
    status = 413
    default_code = "too_large"


class TooManyRequests(DocentError):
    """A per-user limit is spent; `retry_after` says when to try again, in seconds."""

    status = 429
    default_code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = max(1, retry_after)


class Unavailable(DocentError):
    status = 503
    default_code = "unavailable"
