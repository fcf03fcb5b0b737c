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


class HoldNotFound(NotFound):
    code = "hold_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("hold", key)


class TransitNotFound(NotFound):
    code = "transit_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("transit", key)


class FeeNotFound(NotFound):
    code = "fee_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("fee", key)


class CourierReturnNotFound(NotFound):
    code = "courier_return_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("courier return", key)


class NoRule(Conflict):
    """No row of the matrix matches (the consortium has no default rule): a librarian must
    add one before this can be lent."""

    code = "no_circulation_rule"


class Refused(Conflict):
    """A loan, renewal or hold refused; each reason has its own class and code. Staff whose
    role allows it may override the ``overridable`` ones, and the override is audited."""

    code = "refused"
    overridable = False


class CardNotActive(Refused):
    code = "card_not_active"


class CardExpired(Refused):
    code = "card_expired"
    overridable = True


class FeeLimitReached(Refused):
    code = "fee_limit"
    overridable = True


class NotLentToReader(Refused):
    """The owning library's rule lends nothing of this kind to this reader's category."""

    code = "library_does_not_lend"
    overridable = True


class ItemHeldForAnother(Refused):
    code = "item_held"


class ReaderBlocked(Refused):
    code = "reader_blocked"


class LoanLimitReached(Refused):
    code = "loan_limit"
    overridable = True


class ItemNotLoanable(Refused):
    code = "item_not_loanable"


class ItemOnLoan(Refused):
    code = "item_on_loan"


class NotInLibrary(Refused):
    """Borrowing by phone in a library the phone has not shown it is in."""

    code = "not_in_library"


class ItemElsewhere(Refused):
    """Borrowing by phone a copy that stands in another library (``details["library_id"]``)."""

    code = "item_elsewhere"


class ChannelNotAllowed(Refused):
    code = "channel_not_allowed"


class RenewalLimitReached(Refused):
    code = "renewal_limit"
    overridable = True


class RenewalHeld(Refused):
    """Another reader is waiting for this title and no other copy can fill their hold."""

    code = "renewal_held"
    overridable = True


class HoldNotAllowed(Refused):
    code = "hold_not_allowed"


class PickupNotAllowed(Refused):
    code = "pickup_not_allowed"


class HoldLimitReached(Refused):
    code = "hold_limit"
    overridable = True


class AlreadyRequested(Refused):
    code = "already_requested"


class AlreadyBorrowed(Refused):
    code = "already_borrowed"


class NotOnLoan(Conflict):
    code = "not_on_loan"


class CourierAlreadyRequested(Conflict):
    code = "courier_already_requested"
