"""Circulation: the rule matrix, loans, holds, transits, fees, notices."""

from biblioverse.circulation.errors import RuleNotFound
from biblioverse.circulation.models import CirculationRule, Loan
from biblioverse.circulation.rules import NoRule, PickupPolicy, Policy, Rule, due_at, resolve
from biblioverse.circulation.service import (
    Applied,
    LoanLine,
    RuleInput,
    checkin,
    checkout,
    explain,
    matrix,
    open_loans,
    renew,
    save_rule,
)

__all__ = [
    "Applied",
    "CirculationRule",
    "Loan",
    "LoanLine",
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
    "open_loans",
    "renew",
    "resolve",
    "save_rule",
]
