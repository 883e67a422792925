"""Export errors: a stable code plus a human-readable message (never a traceback to a user)."""

from __future__ import annotations


class ExportError(Exception):
    """Codes: CHECKPOINT_INVALID, EXPORT_FAILED, QUANTIZE_FAILED, PARITY_FAILED, OUTPUT_EXISTS."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
