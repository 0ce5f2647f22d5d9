"""Value types shared by the policy file's sections."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

#: What the policy file names things (roles, tiers, categories, calendars...) with: a
#: lower-case name. ``Actor`` roles follow the same rule (docs/decisions/0036).
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
MAX_NAME = 64
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=MAX_NAME)]


def one_line(error: Exception) -> str:
    """What ``error`` says, in one line: a pydantic ``ValidationError`` as its messages
    (without the ``Value error, `` before a validator's own sentence), joined with
    ``; `` and without its title, type and URL lines; any other error as it is."""
    if isinstance(error, ValidationError):
        return "; ".join(
            str(problem["msg"]).removeprefix("Value error, ") for problem in error.errors()
        )
    return str(error)


def refuse_float(value: Any) -> Any:
    """Refuse a float (or a boolean) where an amount of money is expected."""
    if isinstance(value, float):
        raise ValueError(
            "floats are never money: write the amount as a string or a plain decimal, e.g. '40.00'"
        )
    if isinstance(value, bool):
        raise ValueError("expected an amount, got a boolean")
    return value


_WITH_CURRENCY = re.compile(r"^\s*(?:[A-Za-z]{3}\s*[-+]?[0-9.]+|[-+]?[0-9.]+\s*[A-Za-z]{3})\s*$")


def _policy_amount(value: Any) -> Any:
    """An amount in the policy file: a plain decimal (``40.00`` or ``"40.00"``), in the
    policy's ``currency``; never a float, never with a currency of its own."""
    if isinstance(value, str) and _WITH_CURRENCY.match(value):
        raise ValueError(
            f"{value!r} names a currency: write the amount alone (e.g. '40.00'); every amount "
            "in a policy file is in the policy's currency"
        )
    return refuse_float(value)


Amount = Annotated[Decimal, BeforeValidator(_policy_amount), Field(ge=0, allow_inf_nan=False)]

_ISO_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: Any) -> timedelta:
    """An ISO 8601 duration in weeks, days, hours, minutes and seconds (``P2D``,
    ``PT4H``, ``P1DT12H``). Years and months are refused: their length varies."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("a duration cannot be negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 duration such as 'P2D' or 'PT4H', got {value!r}")
    text = value.strip().upper()
    if text.startswith("-"):
        raise ValueError("a duration cannot be negative")
    match = _ISO_DURATION.match(text)
    if match is None:
        hint = (
            " (years and months vary in length: use days)"
            if re.search(r"\d[YM]", text.split("T")[0])
            else ""
        )
        raise ValueError(
            f"{value!r} is not an ISO 8601 duration such as 'P2D', 'PT4H' or 'P1DT12H'{hint}"
        )
    parts = {k: float(v) if k == "seconds" else int(v) for k, v in match.groupdict().items() if v}
    try:
        return timedelta(**parts)
    except OverflowError:
        raise ValueError(
            f"{value!r} is too long: a duration is at most 999999999 days (and a deadline "
            "must fall before the year 10000)"
        ) from None


def format_duration(value: timedelta) -> str:
    """``timedelta(days=28)`` as ``P28D``, ``timedelta(hours=36)`` as ``P1DT12H``: the
    ISO 8601 form a policy file writes it in."""
    seconds = value.days * 86400 + value.seconds
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    fraction = f".{value.microseconds:06d}".rstrip("0") if value.microseconds else ""
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n) + (
        f"{secs}{fraction}S" if secs or fraction else ""
    )
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return text if text != "P" else "PT0S"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class LocatedError(ValueError):
    """Problems found across fields, each with the location it belongs to."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


Multiplier = Annotated[Decimal, BeforeValidator(refuse_float), Field(gt=0, allow_inf_nan=False)]


def _version_text(value: Any) -> Any:
    """``version: 3`` or ``version: 2026.1`` in YAML mean the text as written."""
    return str(value) if isinstance(value, int | Decimal) and not isinstance(value, bool) else value


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
