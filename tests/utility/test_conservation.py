"""Nothing billed twice, nothing lost: whatever months have readings, whatever they say
and whenever they arrive (in the window, outside it), once an on-time reading comes the
kWh billed over all invoices and credit notes (estimates and their settlement included)
equal the meter's consumption since the contract began."""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.utility.billing import Biller
from plugins.utility.dates import Period
from plugins.utility.settings import UtilitySettings
from plugins.utility.store import UtilityStore
from tests.utility.conftest import add_contract, reading, seed_prices

START = Period(2025, 1)
#: None: no reading; (offset, kWh): a reading ``offset`` days into the window when
#: offset <= 7, else arriving outside it (4th to 26th of the next month).
month = st.one_of(st.none(), st.tuples(st.integers(0, 30), st.integers(0, 900)))


@settings(max_examples=40, deadline=None)
@given(months=st.lists(month, min_size=2, max_size=14), last=st.integers(0, 900),
       meter_change_at=st.one_of(st.none(), st.integers(0, 13)))
def test_billed_kwh_add_up_to_the_meter(months: list[tuple[int, int] | None], last: int,
                                        meter_change_at: int | None) -> None:
    months = [*months, (1, last)]   # the story ends with an actual reading
    with tempfile.TemporaryDirectory() as work:
        store = UtilityStore(Path(work) / "u.db")
        seed_prices(store)
        mp = add_contract(store, start=dt.date(2024, 12, 20), opening="5000",
                          expected_kwh="100")
        biller = Biller(store, UtilitySettings())
        value = Decimal(5000)
        consumed = Decimal(0)
        billed = Decimal(0)
        for i, sent in enumerate(months):
            period = START.shift(i)
            if sent is not None:
                offset, kwh = sent
                if offset <= 7:
                    day = period.window[0] + dt.timedelta(days=offset)
                else:
                    nxt = period.shift(1)
                    day = dt.date(nxt.year, nxt.month, 4 + (offset - 8))
                consumed += kwh
                if meter_change_at == i:
                    # The old meter ran 7 kWh more; the new one starts at 0.
                    value = Decimal(kwh - 7) if kwh >= 7 else Decimal(0)
                    consumed += 0 if kwh >= 7 else 7 - kwh
                    r = reading(mp, day, value, meter_change=True,
                                old_meter_final=store.readings(mp)[-1].value + 7)
                else:
                    value += kwh
                    r = reading(mp, day, value)
                store.add_reading(r, today=day)
            plan = biller.plan(store.get_contract("K1"), period, paper=False,
                               as_of=dt.date(2030, 1, 1))
            [bill] = store.reserve_bills(period, "E", [("K1", plan.issue_date,
                                                        plan.bill_data)])
            store.mark_issued("K1", period, bill.number, [])
            invoice = biller.invoice(plan, bill.number)
            sign = -1 if invoice.is_credit_note else 1
            billed += sign * sum(ln.quantity for ln in invoice.lines
                                 if ln.item.sellers_id in ("energy", "energy-settlement"))
        assert billed == consumed
        store.close()
