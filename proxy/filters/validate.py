"""Request-body check for recognised endpoints: the body must be a JSON object.

Runs right after identity so unauthenticated callers learn nothing about body handling. Fails closed:
a malformed body is answered 400 (``invalid_request``) in the dialect's shape and never forwarded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy import errors
from proxy.errors import Reply
from proxy.pipeline import Filter

if TYPE_CHECKING:
    from proxy.exchange import Exchange


class ValidateFilter(Filter):
    name = "validate"

    async def on_request(self, ex: Exchange) -> Reply | None:
        if ex.dialect is None or ex.method != "POST":
            return None
        if not ex.body:
            return ex.error(errors.INVALID_REQUEST, "The request body is empty; a JSON object is expected.")
        obj = ex.json
        if obj is None:
            return ex.error(
                errors.INVALID_REQUEST, f"The request body is not valid JSON: {ex.json_error}"
            )
        if not isinstance(obj, dict):
            return ex.error(errors.INVALID_REQUEST, "The request body must be a JSON object.")
        return None
