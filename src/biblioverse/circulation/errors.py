"""Broken rules of circulation."""

from __future__ import annotations

from biblioverse.errors import Conflict, NotFound


class RuleNotFound(NotFound):
    code = "circulation_rule_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("circulation rule", key)


class LoanNotFound(NotFound):
    code = "loan_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("loan", key)


class Refused(Conflict):
    """A loan or renewal refused; each reason has its own class and code."""

    code = "refused"


class CardNotActive(Refused):
    code = "card_not_active"


class CardExpired(Refused):
    code = "card_expired"


class ReaderBlocked(Refused):
    code = "reader_blocked"


class LoanLimitReached(Refused):
    code = "loan_limit"


class ItemNotLoanable(Refused):
    code = "item_not_loanable"


class ItemOnLoan(Refused):
    code = "item_on_loan"


class ChannelNotAllowed(Refused):
    code = "channel_not_allowed"


class RenewalLimitReached(Refused):
    code = "renewal_limit"


class NotOnLoan(Conflict):
    code = "not_on_loan"
