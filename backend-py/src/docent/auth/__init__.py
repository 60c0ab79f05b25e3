"""Supabase access-token verification and the FastAPI dependency that yields a `Principal`."""

from docent.auth.dependency import CurrentPrincipal, current_principal
from docent.auth.jwks import JwksCache
from docent.auth.principal import Principal
from docent.auth.verifier import TokenVerifier

__all__ = ["CurrentPrincipal", "JwksCache", "Principal", "TokenVerifier", "current_principal"]
