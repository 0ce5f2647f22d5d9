"""complaintflow policies: policy files, money, remedies and decisions. Pure: no storage."""

from policies.decide import (
    OfferRequest,
    decide_acceptance,
    decide_approval,
    decide_offer,
    decide_reclassification,
    limit_for,
)
from policies.decision import Decision, Outcome
from policies.errors import (
    ComplaintflowError,
    CurrencyMismatch,
    MoneyError,
    PolicyFileError,
    Problem,
)
from policies.loader import bundled_policy, load_policy, parse_policy
from policies.model import (
    FeedbackRules,
    OfferRules,
    Playbook,
    Policy,
    ReopenRules,
    RoleRules,
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
    "Playbook",
    "Policy",
    "PolicyFileError",
    "Problem",
    "Remedy",
    "ReopenRules",
    "RoleRules",
    "bundled_policy",
    "decide_acceptance",
    "decide_approval",
    "decide_offer",
    "decide_reclassification",
    "default_policy",
    "limit_for",
    "load_policy",
    "minor_units",
    "parse_policy",
]
