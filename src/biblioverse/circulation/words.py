"""What the pages say for each refusal of circulation, by the error's code: to staff at the
desk, and to readers about their own card. Marked for translation; translated when shown."""

from __future__ import annotations

from biblioverse.catalog.errors import ItemNotFound
from biblioverse.circulation import errors
from biblioverse.errors import DomainError
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _

NO_READER = N_("No reader has this card number.")
NO_COPY = N_("No copy has this barcode.")

DESK = {
    errors.CardNotActive.code: N_("The card waits for activation at a desk."),
    errors.CardExpired.code: N_("The card has expired."),
    errors.ReaderBlocked.code: N_("The card is blocked."),
    errors.LoanLimitReached.code: N_("The card has reached its loan limit."),
    errors.ItemOnLoan.code: N_("This copy is already on loan."),
    errors.ItemNotLoanable.code: N_("This copy is not for loan."),
    errors.ChannelNotAllowed.code: N_("This copy is lent at a desk only."),
    errors.NotOnLoan.code: N_("This copy is not on loan."),
    errors.FeeLimitReached.code: N_("The reader's unpaid fees are above the limit."),
    errors.NotLentToReader.code: N_("The owning library does not lend this to this reader."),
    errors.ItemHeldForAnother.code: N_("This copy is held for another reader."),
    errors.RenewalLimitReached.code: N_("This loan has been renewed as often as allowed."),
    errors.RenewalHeld.code: N_("Another reader is waiting for this title."),
    ItemNotFound.code: NO_COPY,
    "forbidden": N_("Your role does not include lending at this library."),
}

READER = {
    # the card
    errors.CardExpired.code: N_("Your card has expired."),
    errors.ReaderBlocked.code: N_("Your card is blocked."),
    errors.CardNotActive.code: N_("Your card waits for activation at a desk."),
    errors.FeeLimitReached.code: N_("Your unpaid fees are above the limit."),
    errors.LoanLimitReached.code: N_("Your card has reached its loan limit."),
    # borrowing by phone
    errors.ChannelNotAllowed.code: N_("This copy is lent at the desk, not by phone."),
    errors.ItemOnLoan.code: N_("This copy is already on loan."),
    errors.ItemNotLoanable.code: N_("This copy is not for loan."),
    errors.ItemHeldForAnother.code: N_("This copy is held for another reader."),
    errors.NotLentToReader.code: N_("The owning library does not lend this to you."),
    ItemNotFound.code: N_("No copy has this barcode. Check the number under the bars."),
    # renewing
    errors.RenewalLimitReached.code: N_("This loan cannot be renewed again."),
    errors.RenewalHeld.code: N_("Another reader is waiting for this title."),
    errors.LoanNotFound.code: N_("This loan is not open on your card."),
    # holds
    errors.HoldNotAllowed.code: N_("No copy of this title can be lent to you."),
    errors.PickupNotAllowed.code: N_("This title cannot be collected at that library."),
    errors.HoldLimitReached.code: N_("You have as many holds as your card allows."),
    errors.AlreadyRequested.code: N_("You already have a hold on this title."),
    errors.AlreadyBorrowed.code: N_("You have this title on loan."),
    errors.HoldNotFound.code: N_("This hold is not on your card."),
    "illegal_transition": N_("This can no longer be changed."),
    # courier returns
    errors.CourierAlreadyRequested.code: N_("One of these books is already booked for a courier."),
    errors.CourierReturnNotFound.code: N_("This courier return is not on your card."),
}


def _why(exc: DomainError) -> str | None:
    """The words a refusal carries for itself (a copy not for loan says why), if any."""
    why = exc.details.get("why") if isinstance(exc.details, dict) else None
    return why if isinstance(why, str) else None


def to_desk(exc: DomainError) -> str:
    """What the desk is told of a refusal, translated."""
    return _(_why(exc) or DESK.get(exc.code, DESK.get(exc.kind, exc.message)))


def to_reader(exc: DomainError) -> str:
    """What a reader is told of a refusal of their own request, translated."""
    if exc.code in READER and not _why(exc):
        return _(READER[exc.code])
    return to_desk(exc)
