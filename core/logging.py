"""Structured logs (structlog) that never carry personal data or key material.

Rendered as one JSON object a line. Exceptions are rendered as plain tracebacks without
local variables: a rich traceback with locals would print the very ID numbers, mobiles and
keys the rest of the system keeps encrypted.
"""

from __future__ import annotations

import logging

import structlog

_configured = False


def configure_logging(level: str = "info") -> None:
    """Configure structlog once per process."""
    global _configured
    if _configured:
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # plain traceback text, no locals
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        cache_logger_on_first_use=True,
    )
    _configured = True
