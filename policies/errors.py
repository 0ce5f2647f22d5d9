"""The root of complaintflow's errors, and the errors of the policy layer.

The root lives here, in the lowest layer, because ``policies`` imports nothing else of
complaintflow (see ``docs/decisions/0002-error-root-in-policies.md``).  ``workflow.errors``
re-exports it; users import every error from ``workflow`` or ``workflow.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass


class ComplaintflowError(Exception):
    """Root of every error complaintflow raises on purpose."""

    @property
    def log_reason(self) -> str:
        """The error as a log line says it: its message, unless that may repeat text the
        caller gave (``InvalidStepData`` names the fields only)."""
        return str(self)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a policy file: where it is and what is wrong."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class PolicyFileError(ComplaintflowError):
    """A policy file (or policy data) could not be loaded: names the file, each location
    and what is wrong there. ``kind`` is what the file is: a ``policy file``, or the
    ``cases file`` of expected decisions ``complaintflow policy test`` runs."""

    def __init__(self, file: str, problems: list[Problem], *, kind: str = "policy file") -> None:
        self.file = file
        self.problems = tuple(problems)
        self.kind = kind
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{kind} {file} is not valid:\n{lines}")


class NoBundledPolicy(PolicyFileError, LookupError):
    """``bundled_policy`` (or ``bundled_path``) of a name no policy shipped with
    complaintflow has: there is no file to call invalid, so the message says only that,
    with a "did you mean" and the bundled names (``problems`` holds it too). A
    ``PolicyFileError``, as it always was; a ``LookupError`` too."""

    def __init__(self, name: str, message: str, *, kind: str = "policy file") -> None:
        super().__init__(name, [Problem("", message)], kind=kind)
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


class MoneyError(ComplaintflowError, ValueError):
    """An amount of money is malformed: a float, an unknown currency, too many decimals."""


class CurrencyMismatch(MoneyError):
    """Two amounts in different currencies were combined or compared."""

    def __init__(self, left: str, right: str, *, why: str | None = None) -> None:
        self.left = left
        self.right = right
        said = f"cannot combine amounts in {left} and {right}"
        super().__init__(f"{said}: {why}" if why else said)
