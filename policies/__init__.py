"""complaintflow policies: policy files, money, remedies and decisions. Pure: no storage."""

from policies.decision import Decision, Outcome
from policies.errors import (
    ComplaintflowError,
    CurrencyMismatch,
    MoneyError,
    PolicyFileError,
    Problem,
)
from policies.model import (
    FeedbackRules,
    OfferRequest,
    OfferRules,
    Policy,
    ReopenRules,
    decide_offer,
    default_policy,
)
from policies.money import Money, minor_units
from policies.remedy import BUILTIN_REMEDY_KINDS, MONETARY_REMEDY_KINDS, Remedy

__all__ = [
    "BUILTIN_REMEDY_KINDS",
    "MONETARY_REMEDY_KINDS",
    "ComplaintflowError",
    "CurrencyMismatch",
    "Decision",
    "FeedbackRules",
    "Money",
    "MoneyError",
    "OfferRequest",
    "OfferRules",
    "Outcome",
    "Policy",
    "PolicyFileError",
    "Problem",
    "Remedy",
    "ReopenRules",
    "decide_offer",
    "default_policy",
    "minor_units",
]
