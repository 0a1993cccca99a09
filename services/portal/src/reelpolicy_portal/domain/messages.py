"""Marking texts for the message catalogs."""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark, translate later")
    """``message`` as it is: a message id that extraction finds (``pybabel extract -k
    N_``), translated where the page renders it."""
    return message
