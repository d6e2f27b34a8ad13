"""Disconnections and reconnections of supply, and when a reconnection costs a fee.

The supplier's terms: a household whose supply was cut off for late payment *again
within a year* pays the reconnection fee. So a reconnection carries the fee only when

* the customer is a household (not a business: no VAT or registration number, unless
  the customer record says otherwise),
* the disconnection it ends was for late payment, and
* an earlier disconnection of the same contract for late payment lies within a year
  before it: after the same calendar day one year earlier (:func:`year_before`), so the
  anniversary itself is a full year and does not count.

Every disconnection is recorded with its reason, every reconnection with the
disconnection it ends and the decision about the fee, in words shown on the invoice.
"""

from __future__ import annotations

import datetime as dt

from plugins.utility.models import DisconnectionReason
from plugins.utility.store import Disconnection, Reconnection, UtilityError, UtilityStore

LATE_PAYMENT = "late-payment"


def year_before(day: dt.date) -> dt.date:
    """The same calendar day a year earlier (29 February → 28 February)."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def previous_late_payment(store: UtilityStore, d: Disconnection) -> Disconnection | None:
    """The latest disconnection for late payment before ``d`` and less than a year before
    it (the anniversary itself is a full year: not "within a year")."""
    if d.reason != LATE_PAYMENT:
        return None
    earliest = year_before(d.date)
    earlier = [e for e in store.disconnections(d.contract)
               if e.id != d.id and e.reason == LATE_PAYMENT and earliest < e.date <= d.date
               and (e.date, e.id) < (d.date, d.id)]
    return earlier[-1] if earlier else None


def fee_decision(store: UtilityStore, contract: str, d: Disconnection) -> tuple[bool, str]:
    """Whether reconnecting after ``d`` costs the fee, and why (for the operator)."""
    k = store.get_contract(contract)
    customer = store.get_customer(k.customer) if k else None
    if customer is None or not customer.is_household:
        return False, "no fee: the customer is a business (the fee applies to households)"
    if d.reason != LATE_PAYMENT:
        return False, f"no fee: the disconnection of {d.date} was for {d.reason}, not late " \
                      "payment"
    previous = previous_late_payment(store, d)
    if previous is None:
        return False, (f"no fee: the disconnection of {d.date} is the first for late payment "
                       "within a year")
    return True, (f"fee: a household disconnected for late payment again within a year "
                  f"({previous.date} and {d.date})")


def disconnect(store: UtilityStore, contract: str, day: dt.date,
               reason: DisconnectionReason, by: str) -> Disconnection:
    return store.add_disconnection(contract, day, reason, by)


def reconnect(store: UtilityStore, contract: str, day: dt.date, by: str) -> Reconnection:
    """Record the reconnection that ends the disconnection in force on ``day``, with the
    fee decided by the terms (billed on the next invoice when it applies)."""
    d = store.open_disconnection(contract, day)
    if d is None:
        if store.get_contract(contract) is None:
            raise UtilityError(f"reconnection: field contract: no contract {contract!r}")
        raise UtilityError(
            f"reconnection of {contract} on {day}: field date: no disconnection in force "
            f"on that day; record it first with 'gateway utility disconnection {contract} "
            "--date ... --reason ...'")
    fee, reason = fee_decision(store, contract, d)
    return store.add_reconnection(contract, day, by, fee=fee, reason=reason, disconnection=d)
