"""Where the engine's log lines go: the embedder's logger, structlog or the standard
library's, without configuring either globally (docs/embedding.md#logging; decision
0033).

Each line is an event name (``step accepted``) and keys (``case_id``, ``step``, ...).
A structlog logger gets them as they are. A standard library logger gets one record per
line: the message is the event and its keys (``step accepted case_id=case-1 seq=2 ...``)
and each key is also an attribute of the record (``record.case_id``), for filters and
JSON formatters; a line below the logger's level is dropped before it is rendered.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

#: The standard library logger's name, and the structlog logger's.
LOGGER_NAME = "complaintflow"

#: A ``LogRecord``'s own attributes: a key of ours by one of these names stays in the
#: message only (``logging`` refuses to overwrite them through ``extra``).
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def _render(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[str], dict[str, Any]]:
    """structlog's last processor for a standard library logger: ``logger.info(message,
    extra=keys)``."""
    event = event_dict.pop("event", "")
    keys = sorted(event_dict.items())
    message = " ".join([str(event), *(f"{key}={_shown(value)}" for key, value in keys)])
    extra = {key: value for key, value in keys if key not in _RECORD_ATTRIBUTES}
    return (message,), {"extra": extra}


def _shown(value: object) -> str:
    """A key's value in the message: quoted (``repr``, which escapes control, format and
    line-separator characters) when it is empty, holds a space, ``=`` or a quote, or a
    character a terminal would act on (an escape sequence in a step name the caller
    gave, a bidi override), so that a value can neither forge a key nor the screen."""
    text = str(value) if isinstance(value, str) else repr(value)
    if not text or not text.isprintable() or any(c.isspace() or c in "='\"" for c in text):
        return repr(text)
    return text


def _enabled(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Drop a line below the logger's level before it is rendered (structlog's
    ``filter_by_level`` reads ``logger.disabled``, which a ``LoggerAdapter`` lacks)."""
    if not logger.isEnabledFor(_LEVELS[method_name]):
        raise structlog.DropEvent
    return event_dict


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}  # fmt: skip


def stdlib_logger(logger: logging.Logger | logging.LoggerAdapter[Any]) -> Any:
    """A structlog logger writing to ``logger`` (a ``logging.Logger`` or
    ``LoggerAdapter``), with processors of its own: whatever structlog's global
    configuration is, the record is the one described above."""
    return structlog.wrap_logger(
        logger,
        processors=[_enabled, _render],
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class DefaultLogger:
    """The engine's logger when it is given none: ``structlog.get_logger("complaintflow")``
    once the application has configured structlog (``structlog.configure``), the
    standard library logger ``complaintflow`` until then, so that a product that only
    uses ``logging`` gets the lines through its own handlers and levels (and one that
    configured nothing sees nothing below a warning, on stderr, as ``logging`` does)
    rather than structlog's unconfigured default, which prints every line to stdout.
    Chosen at each line: configuring structlog after the engine was made counts."""

    def __init__(self) -> None:
        self._structlog = structlog.get_logger(LOGGER_NAME)
        self._stdlib = stdlib_logger(logging.getLogger(LOGGER_NAME))

    def info(self, event: str, **keys: Any) -> None:
        (self._structlog if structlog.is_configured() else self._stdlib).info(event, **keys)

    def warning(self, event: str, **keys: Any) -> None:
        (self._structlog if structlog.is_configured() else self._stdlib).warning(event, **keys)


def engine_logger(logger: Any) -> Any:
    """The logger an engine writes to, given what ``Engine(logger=...)`` was given."""
    if logger is None:
        return DefaultLogger()
    if isinstance(logger, logging.Logger | logging.LoggerAdapter):
        return stdlib_logger(logger)
    return logger
