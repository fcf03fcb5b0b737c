"""Circulation: the rule matrix, loans, holds, transits, fees, notices."""

from biblioverse.circulation.errors import RuleNotFound
from biblioverse.circulation.models import CirculationRule, Loan
from biblioverse.circulation.rules import NoRule, PickupPolicy, Policy, Rule, due_at, resolve
from biblioverse.circulation.service import (
    Applied,
    RuleInput,
    checkin,
    checkout,
    explain,
    matrix,
    renew,
    save_rule,
)

__all__ = [
    "Applied",
    "CirculationRule",
    "Loan",
    "NoRule",
    "PickupPolicy",
    "Policy",
    "Rule",
    "RuleInput",
    "RuleNotFound",
    "checkin",
    "checkout",
    "due_at",
    "explain",
    "matrix",
    "renew",
    "resolve",
    "save_rule",
]
