"""Circulation: the rule matrix, loans, holds, transits, courier returns, fees, notices."""

from biblioverse.circulation import courier, fees, holds, notices, words
from biblioverse.circulation.checks import Standing, standing
from biblioverse.circulation.errors import NoRule, RuleNotFound
from biblioverse.circulation.lifecycle import HoldState, LoanState, TransitState
from biblioverse.circulation.matrix import Matrix, matrix
from biblioverse.circulation.models import CirculationRule, Fee, Hold, Loan, Transit
from biblioverse.circulation.rules import PickupPolicy, Policy, Rule, due_at, resolve
from biblioverse.circulation.service import (
    Applied,
    Checkin,
    LoanLine,
    RuleInput,
    anonymise,
    checkin,
    checkout,
    explain,
    open_loans,
    reader_data,
    reading_history,
    renew,
    save_rule,
)

__all__ = [
    "Applied",
    "Checkin",
    "CirculationRule",
    "Fee",
    "Hold",
    "HoldState",
    "Loan",
    "LoanLine",
    "LoanState",
    "Matrix",
    "NoRule",
    "PickupPolicy",
    "Policy",
    "Rule",
    "RuleInput",
    "RuleNotFound",
    "Standing",
    "Transit",
    "TransitState",
    "anonymise",
    "checkin",
    "checkout",
    "courier",
    "due_at",
    "explain",
    "fees",
    "holds",
    "matrix",
    "notices",
    "open_loans",
    "reader_data",
    "reading_history",
    "renew",
    "resolve",
    "save_rule",
    "standing",
    "words",
]
