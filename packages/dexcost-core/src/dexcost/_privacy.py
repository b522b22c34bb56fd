"""Privacy transforms applied before storage: field redaction and customer-id hashing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any


def hash_customer_id(customer_id: str) -> str:
    """Return the SHA-256 hex digest of ``customer_id``."""
    return hashlib.sha256(customer_id.encode("utf-8")).hexdigest()


class Redactor:
    """Removes the configured keys, at any depth, from a details mapping (never in place)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[str]) -> None:
        self._fields = frozenset(fields)

    def __bool__(self) -> bool:
        return bool(self._fields)

    def __call__(self, value: dict[str, Any]) -> dict[str, Any]:
        cleaned = self._clean(value)
        assert isinstance(cleaned, dict)
        return cleaned

    def _clean(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items() if k not in self._fields}
        if isinstance(value, (list, tuple)):
            return type(value)(self._clean(v) for v in value)
        return value
