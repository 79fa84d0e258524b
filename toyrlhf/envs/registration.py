"""Gymnasium registration of toyrlhf environments (filled in with the Gymnasium bridge)."""


def register_all() -> None:
    """Register every ``toyrlhf/...`` id with Gymnasium (idempotent)."""
