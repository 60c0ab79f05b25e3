"""The FastAPI dependency: `Authorization: Bearer <token>` → a verified `Principal`."""

from typing import Annotated, cast

from fastapi import Depends, Request

from docent.auth.principal import Principal
from docent.auth.verifier import TokenVerifier
from docent.errors import Unauthorized


async def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthorized("missing Authorization header", code="missing_token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("Authorization header must be 'Bearer <token>'", code="invalid_request")
    token = token.strip()
    if not token:
        raise Unauthorized("Authorization header carries no token", code="invalid_request")
    verifier = cast(TokenVerifier, request.state.verifier)
    principal = await verifier.verify(token)
    request.state.user_id = str(principal.user_id)  # for the request log line (api/request_log.py)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
