"""complaintflow's engine: customer complaints as a checked, timed, auditable workflow.

Import everything a user needs from here::

    from workflow import Engine, ManualClock, Money, Remedy
"""

from policies.decide import OfferRequest, decide_offer
from policies.decision import Decision, Outcome
from policies.loader import bundled_policy, load_policy
from policies.model import Policy, default_policy
from policies.money import Money
from policies.remedy import Remedy
from workflow.checklist import CHECKLIST, STEP_NAMES, State, allowed_steps, mermaid
from workflow.clock import Clock, ManualClock, SystemClock
from workflow.domain import (
    Actor,
    Case,
    Category,
    Channel,
    ComplainantType,
    Customer,
    Escalation,
    Feedback,
    Note,
    Offer,
    OfferStatus,
    Priority,
    Promise,
)
from workflow.engine import Engine, Guidance
from workflow.errors import (
    AuditFailure,
    CaseAlreadyExists,
    CaseNotFound,
    CasePurged,
    ComplaintflowError,
    ConcurrencyConflict,
    CurrencyMismatch,
    ErasureRefused,
    IdempotencyKeyReused,
    InvalidActor,
    InvalidErasure,
    InvalidIdempotencyKey,
    InvalidQuery,
    InvalidStepData,
    InvalidTime,
    MissingInformation,
    MoneyError,
    NotATime,
    PolicyFileError,
    PolicyViolation,
    SchemaVersionError,
    SnapshotUnreadable,
    StepNotAllowed,
    StepRefused,
    StoreError,
    StoreMisconfigured,
    StoreUnavailable,
)
from workflow.events import GENESIS, Event
from workflow.personal import ERASED, Personal, vault_of
from workflow.query import CaseAtRisk, CasePage, CaseQuery, UnreadableCase
from workflow.replay import replay
from workflow.store import FindsCases, Store, Tombstone

__all__ = [
    "CHECKLIST",
    "ERASED",
    "GENESIS",
    "STEP_NAMES",
    "Actor",
    "AuditFailure",
    "Case",
    "CaseAlreadyExists",
    "CaseAtRisk",
    "CaseNotFound",
    "CasePage",
    "CasePurged",
    "CaseQuery",
    "Category",
    "Channel",
    "Clock",
    "ComplainantType",
    "ComplaintflowError",
    "ConcurrencyConflict",
    "CurrencyMismatch",
    "Customer",
    "Decision",
    "Engine",
    "ErasureRefused",
    "Escalation",
    "Event",
    "Feedback",
    "FindsCases",
    "Guidance",
    "IdempotencyKeyReused",
    "InvalidActor",
    "InvalidErasure",
    "InvalidIdempotencyKey",
    "InvalidQuery",
    "InvalidStepData",
    "InvalidTime",
    "ManualClock",
    "MissingInformation",
    "Money",
    "MoneyError",
    "NotATime",
    "Note",
    "Offer",
    "OfferRequest",
    "OfferStatus",
    "Outcome",
    "Personal",
    "Policy",
    "PolicyFileError",
    "PolicyViolation",
    "Priority",
    "Promise",
    "Remedy",
    "SchemaVersionError",
    "SnapshotUnreadable",
    "State",
    "StepNotAllowed",
    "StepRefused",
    "Store",
    "StoreError",
    "StoreMisconfigured",
    "StoreUnavailable",
    "SystemClock",
    "Tombstone",
    "UnreadableCase",
    "allowed_steps",
    "bundled_policy",
    "decide_offer",
    "default_policy",
    "load_policy",
    "mermaid",
    "replay",
    "vault_of",
]
