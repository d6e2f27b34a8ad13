"""From readings to one invoice (or credit note) per contract and month.

Rules (each tested in tests/utility/, each stated with the supplier's terms in
docs/utility.md):

* The month's reading is one that *arrived* in its window (27th to 3rd); its meter date
  is kept as information. Consumption: that reading minus the last actual reading billed.
  Readings carry a cumulative register that runs on across meter changes.
* No reading arrived in the window: the month is billed by the estimate, the average
  daily consumption between the last actual reading and the earliest actual reading at
  most 12 months (365 days) before it, times the days billed, rounded to whole kWh. A
  contract with fewer than two readings a day apart has no history: its declared
  monthly consumption (``expected_kwh``) times the share of the month billed, or 0 kWh.
* A reading that arrived outside the window settles on the next invoice: that invoice
  bills the actual consumption up to it, credits the kWh billed as estimated, and
  estimates only the days after it (when the month has no reading of its own).
* Settlement: when an actual reading follows estimated months, the invoice bills the
  whole consumption since the last actual reading and credits the kWh billed as estimated
  (at today's prices, per kWh component), naming the estimated invoices. When that leaves
  the customer in credit, the document is a credit note (type 381) referencing them.
* Prices: tariff components valid on the last day of the month; VAT rate valid on that
  day. Fixed monthly components are prorated by days in the first month of a contract.
* Fees are data with validity dates and include VAT: the customer pays exactly the fee
  more than without it, its VAT part exactly (:func:`fee_parts`, :meth:`Biller.invoice`).
* Dates: an invoice is dated the day it is made, never earlier; its due date gives the
  whole term from that day (:mod:`plugins.utility.dates`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from gateway.core import (
    Address,
    AllowanceCharge,
    Contact,
    CreditTransfer,
    ElectronicAddress,
    Identifier,
    Invoice,
    InvoiceLine,
    InvoiceTypeCode,
    Item,
    ItemAttribute,
    LineVat,
    Note,
    Party,
    PaymentInstructions,
    PrecedingInvoice,
    Price,
    VatBreakdown,
    line_net_amount,
    money,
)
from gateway.core import (
    Period as InvoicePeriod,
)
from plugins.utility.dates import (
    Period,
    default_issue_date,
    due_date,
    e_invoice_issue_date,
    paper_due_date,
)
from plugins.utility.models import (
    Contract,
    Fee,
    FeeCode,
    MeteringPoint,
    TariffComponent,
    UtilityCustomer,
)
from plugins.utility.settings import UtilitySettings
from plugins.utility.store import (
    CORRECTION,
    Bill,
    Reconnection,
    StoredReading,
    UtilityError,
    UtilityStore,
)

PEPPOL_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
EN16931 = "urn:cen.eu:en16931:2017"
HISTORY_DAYS = 365
ZERO = Decimal(0)

TEXT = {
    "lv": {
        "pay": "Maksājumā obligāti norādiet rēķina numuru {invoice} un līguma numuru "
               "{contract}.",
        "bank": "Maksājums ir samaksāts dienā, kad nauda ienāk mūsu kontā; pārskaitījums "
                "starp bankām var aizņemt vairāk nekā vienu darba dienu.",
        "estimated": "Objektam {mp} rādījums netika saņemts laikā (no 27. līdz 3. datumam): "
                     "patēriņš {kwh} kWh ir aprēķināts pēc vidējā patēriņa 12 mēnešos; "
                     "starpību ieskaitīsim nākamajā rēķinā.",
        "estimated_after": "Objektam {mp} rādījums {reading} ({date}) saņemts ārpus "
                           "nodošanas laika: patēriņš līdz tam ir aprēķināts pēc rādījuma, "
                           "pēc tam ({kwh} kWh) – pēc vidējā patēriņa.",
        "settled": "Objektam {mp} iekļauts aprēķinātā patēriņa pārrēķins (rēķini {invoices}).",
        "estimated_line": "Aprēķināts patēriņš no {start} līdz {end} (rādījums nav saņemts "
                          "laikā)",
        "actual_line": "Patēriņš no {start} līdz {end}: rādījums {reading}",
        "settlement": "Pārrēķins: aprēķinātais patēriņš",
        "settlement_note": "Atskaitīts patēriņš, kas aprēķināts rēķinos {invoices}",
        "reconnection": "Pieslēguma atjaunošana",
        "reconnection_note": "Atjaunots {date}: mājsaimniecības otrā atslēgšana par kavētu "
                             "maksājumu gada laikā ({previous} un {disconnected}); maksa "
                             "{fee} EUR ar PVN",
        "paper": "Papīra rēķina maksa ({fee} EUR ar PVN)",
        "terms": "Apmaksāt līdz {due} ({days} dienas no rēķina datuma).",
        "means": "Pārskaitījums, {bank}",
        "meter": "Skaitītājs", "point": "Objekts",
        "credit": "Kredītrēķins rēķiniem {invoices}: tajos aprēķinātais patēriņš bija lielāks "
                  "par skaitītāja rādīto. Šī kredītrēķina summa ir jūsu pārmaksa; to "
                  "atmaksāsim uz jūsu kontu vai pēc jūsu lūguma ieskaitīsim nākamajā rēķinā.",
        "credit_terms": "Nekas nav jāmaksā: summa ir jūsu pārmaksa.",
    },
    "en": {
        "pay": "Your payment must quote the invoice number {invoice} and the contract number "
               "{contract}.",
        "bank": "A payment counts on the day the money reaches our account; a transfer "
                "between banks takes more than one working day.",
        "estimated": "No reading for {mp} came in the reading window (27th to 3rd): "
                     "the consumption of {kwh} kWh is estimated from the average of the last "
                     "12 months; the difference will be settled on the next invoice.",
        "estimated_after": "For {mp}, reading {reading} of {date} came outside the reading "
                           "window: the consumption up to it is billed by that reading, after "
                           "it ({kwh} kWh) by the estimate.",
        "settled": "For {mp}, this invoice settles the estimated consumption (invoices "
                   "{invoices}).",
        "estimated_line": "Estimated consumption from {start} to {end} (no reading received "
                          "in the window)",
        "actual_line": "Consumption from {start} to {end}: reading {reading}",
        "settlement": "Settlement: consumption billed as estimated",
        "settlement_note": "Credits the consumption estimated on invoices {invoices}",
        "reconnection": "Reconnection",
        "reconnection_note": "Reconnected on {date}: a household's second disconnection for "
                             "late payment within a year ({previous} and {disconnected}); fee "
                             "{fee} EUR incl. VAT",
        "paper": "Paper invoice fee ({fee} EUR incl. VAT)",
        "terms": "Pay by {due} ({days} days from the invoice date).",
        "means": "Credit transfer, {bank}",
        "meter": "Meter", "point": "Metering point",
        "credit": "Credit note for invoices {invoices}: the consumption estimated there was "
                  "more than the meter shows. The amount of this credit note is owed to you: "
                  "we refund it to your account or, if you ask, set it off against your next "
                  "invoice.",
        "credit_terms": "Nothing to pay: the amount is owed to you.",
    },
}


def _fmt(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


def whole_kwh(value: Decimal) -> Decimal:
    return value.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def net_of(gross: Decimal, vat_rate: Decimal) -> Decimal:
    """The net amount of a VAT-inclusive fee: 51.23 at 21 % → 42.34 (VAT 8.89)."""
    return money(gross * 100 / (100 + vat_rate))


def fee_parts(gross: Decimal, vat_rate: Decimal) -> tuple[Decimal, Decimal]:
    """(net, VAT) of a fee including VAT; they add up to ``gross`` exactly."""
    net = net_of(gross, vat_rate)
    return net, gross - net


def default_fees(settings: UtilitySettings) -> list[Fee]:
    """The schedule when the supplier imported no ``[[fee]]`` of a kind: the paper fee
    from 1 January 2021, the reconnection fee with no start (both amounts configurable)."""
    return [Fee(code="paper", amount=settings.paper_fee, valid_from=dt.date(2021, 1, 1)),
            Fee(code="reconnection", amount=settings.reconnection_fee)]


def fee_on(fees: list[Fee], code: FeeCode, day: dt.date) -> Decimal | None:
    """The amount of fee ``code`` valid on ``day`` (inclusive at both ends), or None."""
    for fee in fees:
        if fee.code == code and (fee.valid_from is None or fee.valid_from <= day) \
                and (fee.valid_to is None or day <= fee.valid_to):
            return fee.amount
    return None


@dataclass
class MeterState:
    """Where a metering point stands after a bill; stored in the bill for the next one."""

    billed_cumulative: Decimal
    actual_cumulative: Decimal
    actual_date: dt.date
    estimated_kwh: Decimal = ZERO  # billed as estimated since the last actual reading
    estimated_in: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"billed_cumulative": str(self.billed_cumulative),
                "actual_cumulative": str(self.actual_cumulative),
                "actual_date": self.actual_date.isoformat(),
                "estimated_kwh": str(self.estimated_kwh), "estimated_in": self.estimated_in}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeterState:
        return cls(Decimal(data["billed_cumulative"]), Decimal(data["actual_cumulative"]),
                   dt.date.fromisoformat(data["actual_date"]), Decimal(data["estimated_kwh"]),
                   list(data["estimated_in"]))


@dataclass
class MeterBill:
    """One metering point's part of a month's document."""

    mp: MeteringPoint
    before: MeterState
    actual_kwh: Decimal  # since the last actual reading billed, up to ``reading``
    estimated_kwh: Decimal  # this month's estimate (0 when the month's reading came)
    estimated: bool  # no reading arrived in the month's window
    estimated_from: dt.date | None  # the first day the estimate covers
    settled_kwh: Decimal  # estimated kWh credited back (0 when none)
    settled_in: list[str]
    reading: StoredReading | None  # the actual reading billed up to (on time or settling)
    arrived_on: dt.date | None  # arrival of the month's on-time reading (e-invoice date)
    after: MeterState

    @property
    def kwh(self) -> Decimal:
        """kWh billed this month before the settlement credit."""
        return self.actual_kwh + self.estimated_kwh


@dataclass
class Plan:
    """Everything a document needs except its number."""

    contract: Contract
    customer: UtilityCustomer
    period: Period
    start: dt.date
    meters: list[MeterBill]
    tariffs: dict[str, list[TariffComponent]]
    vat_rate: Decimal
    paper: bool
    scheduled_issue: dt.date  # by the billing calendar; the run waits for it
    issue_date: dt.date  # the day it is made: never before ``scheduled_issue``
    due_date: dt.date
    term_days: int
    reconnections: list[Reconnection]
    paper_fee: Decimal | None  # EUR incl. VAT, when the customer gets paper and one is valid
    reconnection_fees: list[Decimal]  # EUR incl. VAT, one per reconnection
    credit: bool = False  # the settlement leaves the customer in credit: a credit note
    # The consumption lines and notes, made once while planning (they decide ``credit``).
    usage: tuple[list[InvoiceLine], list[str]] | None = field(default=None, repr=False)

    @property
    def estimated(self) -> bool:
        return any(m.estimated for m in self.meters)

    @property
    def settled_in(self) -> list[str]:
        return sorted({n for m in self.meters for n in m.settled_in})

    def bill_data(self, number: str) -> dict[str, Any]:
        """The state the next month starts from; estimated meters remember this number."""
        meters = {}
        for m in self.meters:
            after = m.after.to_json()
            if m.estimated:
                after["estimated_in"] = [*m.after.estimated_in, number]
            meters[m.mp.id] = after | {"kwh": str(m.kwh),
                                       "estimated": m.estimated,
                                       "settled_kwh": str(m.settled_kwh)}
        return {"meters": meters, "reconnections": [r.id for r in self.reconnections],
                "credit_note": self.credit}


class Biller:
    """Plans and writes the month's invoices for a supplier."""

    def __init__(self, store: UtilityStore, settings: UtilitySettings) -> None:
        self.store = store
        self.settings = settings
        self.fees = store.fees()
        for default in default_fees(settings):
            if not any(f.code == default.code for f in self.fees):
                self.fees.append(default)

    def base_term(self, contract: Contract) -> int:
        return contract.payment_term_days or self.settings.payment_term_days

    def paper_term(self, contract: Contract, period: Period) -> int:
        """The days to pay a paper invoice of ``period`` issued on schedule would give."""
        issue = default_issue_date(period, self.settings.issue_day)
        return (paper_due_date(issue, self.base_term(contract)) - issue).days

    # ------------------------------------------------------------------ planning

    def plan(self, contract: Contract, period: Period, *, paper: bool,
             as_of: dt.date | None = None) -> Plan:
        """The month's document as it would be made on ``as_of`` (default: on its
        scheduled day)."""
        if contract.start > period.last_day:
            raise UtilityError(f"contract {contract.number} begins on {contract.start}, after "
                               f"{period}")
        customer = self.store.get_customer(contract.customer)
        if customer is None:
            raise UtilityError(f"contract {contract.number}: no customer {contract.customer!r}")
        mps = self.store.metering_points(contract.number)
        if not mps:
            raise UtilityError(f"contract {contract.number} has no metering point; add one "
                               "with 'gateway utility import'")
        previous = self.store.last_issued(contract.number, before=period)
        if previous is not None and previous.period != period.shift(-1):
            raise UtilityError(f"contract {contract.number}: the last invoice is for "
                               f"{previous.period}; bill {previous.period.shift(1)} first")
        start = max(contract.start, period.first_day)
        meters = [self._meter(contract, mp, period, start, previous) for mp in mps]
        day = period.last_day
        tariffs = {}
        for mp in mps:
            components = self.store.tariff_on(mp.tariff, day)
            if not components:
                raise UtilityError(f"metering point {mp.id}: tariff {mp.tariff} has no price "
                                   f"valid on {day}")
            tariffs[mp.id] = components
        vat = self.store.vat_rate_on(day)
        if paper:
            scheduled = default_issue_date(period, self.settings.issue_day)
        else:
            arrivals = [m.arrived_on for m in meters]
            complete = None if any(d is None for d in arrivals) else \
                max(d for d in arrivals if d)
            scheduled = e_invoice_issue_date(period, complete)
        # Never back-dated: an invoice made after its scheduled day is dated when made.
        issue = max(scheduled, as_of) if as_of is not None else scheduled
        base = self.base_term(contract)
        due = due_date(issue, e_invoice=not paper, base_term=base,
                       paper_term=self.paper_term(contract, period))
        reconnections = self.store.unbilled_reconnections(contract.number, period.window[1])
        paper_fee = fee_on(self.fees, "paper", issue) if paper else None
        plan = Plan(contract, customer, period, start, meters, tariffs, vat, paper, scheduled,
                    issue, due, (due - issue).days, reconnections, paper_fee or None, [])
        plan.usage = self._usage_lines(plan)
        if _net(plan.usage[0]) < 0:
            # In credit: a credit note, which carries no fee (a pending reconnection fee
            # waits for the next invoice).
            plan.credit, plan.reconnections, plan.paper_fee = True, [], None
        plan.reconnection_fees = [fee_on(self.fees, "reconnection", r.date) or ZERO
                                  for r in plan.reconnections]
        return plan

    def _meter(self, contract: Contract, mp: MeteringPoint, period: Period, start: dt.date,
               previous: Bill | None) -> MeterBill:
        readings = self.store.readings(mp.id)
        state_json = previous.data["meters"].get(mp.id) if previous else None
        if state_json is not None:
            before = MeterState.from_json(state_json)
        else:
            # The opening reading is the baseline even when the contract began this month.
            base = [r for r in readings if r.period < period or r.how == "contract"][-1]
            before = MeterState(base.cumulative, base.cumulative, base.date)
        # Readings known for this month (none that arrived for a later one) ...
        known = [r for r in readings if r.period <= period or r.how == "contract"]
        # ... and not billed yet: after the last actual reading used.
        unbilled = [r for r in known if r.how != "contract" and r.date > before.actual_date]
        # The month's own reading arrived in its window (or was put there by an operator);
        # readings of the first release (no timing) counted for their period as before.
        on_time = [r for r in unbilled if r.counts_as_month_reading
                   and (r.period == period or r.timing is None)]
        settled = (before.estimated_kwh, list(before.estimated_in))
        if on_time:
            reading = unbilled[-1]
            after = MeterState(reading.cumulative, reading.cumulative, reading.date)
            # A correction counts as if it had arrived on its meter date (the invoice is
            # still never dated before the day it is made).
            arrived = max(r.date if r.timing == CORRECTION else r.arrived for r in on_time)
            return MeterBill(mp, before, reading.cumulative - before.actual_cumulative, ZERO,
                             False, None, *settled, reading, arrived, after)
        if unbilled:
            # Arrived outside the window: bill up to it, estimate only the days after it.
            reading = unbilled[-1]
            days = max(0, (period.last_day - reading.date).days)
            kwh = self.estimate(contract, known, days, period.days)
            after = MeterState(reading.cumulative + kwh, reading.cumulative, reading.date,
                               kwh, [])
            return MeterBill(mp, before, reading.cumulative - before.actual_cumulative, kwh,
                             True, reading.date + dt.timedelta(days=1), *settled, reading,
                             None, after)
        days = (period.last_day - start).days + 1
        kwh = self.estimate(contract, known, days, period.days)
        after = MeterState(before.billed_cumulative + kwh, before.actual_cumulative,
                           before.actual_date, before.estimated_kwh + kwh,
                           list(before.estimated_in))
        return MeterBill(mp, before, ZERO, kwh, True, start, ZERO, [], None, None, after)

    @staticmethod
    def estimate(contract: Contract, history: list[StoredReading], days: int,
                 month_days: int) -> Decimal:
        """See the module docstring: average daily use over up to 12 months × days."""
        if history:
            last = history[-1]
            since = last.date - dt.timedelta(days=HISTORY_DAYS)
            first = next(r for r in history if r.date >= since)
            span = (last.date - first.date).days
            if span >= 1:
                return whole_kwh((last.cumulative - first.cumulative) * days / span)
        if contract.expected_kwh is None:
            return ZERO
        return whole_kwh(contract.expected_kwh * days / month_days)

    # ------------------------------------------------------------------ the document

    def _usage_lines(self, plan: Plan) -> tuple[list[InvoiceLine], list[str]]:
        """The consumption and fixed lines of each metering point, and their notes."""
        text = TEXT[plan.customer.language]
        lang = plan.customer.language
        lines: list[InvoiceLine] = []
        notes: list[str] = []
        vat = LineVat(category="S", rate=plan.vat_rate)
        share = _month_share(plan)
        end = _fmt(plan.period.last_day)

        def add(quantity: Decimal, price: Decimal, name: str, sellers_id: str,
                mp: MeteringPoint, note: str | None, unit: str = "KWH") -> None:
            attributes = [ItemAttribute(name=text["point"], value=mp.id),
                          ItemAttribute(name=text["meter"], value=mp.meter)]
            lines.append(InvoiceLine(
                id=str(len(lines) + 1), quantity=quantity, unit=unit, price=Price(net=price),
                vat=vat, note=note,
                item=Item(name=name, sellers_id=sellers_id, attributes=attributes,
                          description=_object(mp))))

        for m in plan.meters:
            parts: list[tuple[Decimal, str]] = []
            if m.reading is not None:
                parts.append((m.actual_kwh, text["actual_line"].format(
                    start=_fmt(m.before.actual_date), end=_fmt(m.reading.date),
                    reading=m.reading.value)))
            if m.estimated:
                assert m.estimated_from is not None
                parts.append((m.estimated_kwh, text["estimated_line"].format(
                    start=_fmt(m.estimated_from), end=end)))
                if m.reading is not None:
                    notes.append(text["estimated_after"].format(
                        mp=m.mp.id, reading=m.reading.value, date=_fmt(m.reading.date),
                        kwh=m.estimated_kwh))
                else:
                    notes.append(text["estimated"].format(mp=m.mp.id, kwh=m.estimated_kwh))
            if m.settled_kwh:
                notes.append(text["settled"].format(mp=m.mp.id,
                                                    invoices=", ".join(m.settled_in)))
            for c in plan.tariffs[m.mp.id]:
                name = c.name_lv if lang == "lv" else c.name_en
                if c.basis == "kwh":
                    for kwh, note in parts:
                        add(kwh, c.price, name, c.component, m.mp, note)
                    if m.settled_kwh:
                        add(-m.settled_kwh, c.price, f"{name}: {text['settlement']}",
                            f"{c.component}-settlement", m.mp,
                            text["settlement_note"].format(invoices=", ".join(m.settled_in)))
                else:
                    add(share, c.price, name, c.component, m.mp, None, unit="MON")
        return lines, notes

    def invoice(self, plan: Plan, number: str) -> Invoice:
        """The month's invoice; or, when the settlement leaves the customer in credit, the
        credit note (type 381) that corrects the estimated invoices."""
        s = self.settings
        lang = plan.customer.language
        text = TEXT[lang]
        contract = plan.contract.number
        lines, usage_notes = plan.usage or self._usage_lines(plan)
        lines = list(lines)
        vat = LineVat(category="S", rate=plan.vat_rate)
        comma = "," if lang == "lv" else "."
        fee_vat: list[Decimal] = []
        for recon, gross in zip(plan.reconnections, plan.reconnection_fees, strict=True):
            if not gross:  # no reconnection fee valid on that day
                continue
            net, tax = fee_parts(gross, plan.vat_rate)
            fee_vat.append(tax)
            d = recon.disconnection
            previous = _previous_disconnection_date(self.store, recon)
            why = text["reconnection_note"].format(
                date=_fmt(recon.date), disconnected=_fmt(d.date) if d else "-",
                previous=_fmt(previous) if previous else "-",
                fee=f"{gross:.2f}".replace(".", comma))
            # The reason is the line's note (BT-127) and its item description (BT-154),
            # which the PDF prints under the item.
            lines.append(InvoiceLine(
                id=str(len(lines) + 1), quantity=Decimal(1), unit="C62", price=Price(net=net),
                vat=vat, note=why,
                item=Item(name=text["reconnection"], sellers_id="reconnection",
                          description=why)))
        charges = []
        if plan.paper_fee:
            net, tax = fee_parts(plan.paper_fee, plan.vat_rate)
            fee_vat.append(tax)
            charges.append(AllowanceCharge(
                amount=net, vat_category="S", vat_rate=plan.vat_rate,
                reason=text["paper"].format(fee=f"{plan.paper_fee:.2f}".replace(".", comma))))
        breakdown = _exact_fee_vat(lines, charges, fee_vat, plan.vat_rate)
        single = plan.meters[0].mp if len(plan.meters) == 1 else None
        buyer = _buyer(plan.customer)
        # Peppol BIS 3.0 needs a buyer endpoint from its code list (9939 VAT, 0218
        # register): businesses have one, households do not, so their invoices are
        # plain EN 16931 (a UBL writer's default would claim Peppol).
        peppol = buyer.electronic_address is not None
        common: dict[str, Any] = dict(
            number=number, issue_date=plan.issue_date, currency="EUR",
            buyer_reference=contract, contract_reference=contract,
            business_process=PEPPOL_PROCESS if peppol else None,
            specification_id=None if peppol else EN16931,
            invoiced_object=Identifier(value=single.id, scheme="AET") if single else None,
            invoice_period=InvoicePeriod(start=plan.start, end=plan.period.last_day),
            seller=self._seller(), buyer=buyer)
        if plan.credit:
            corrected = plan.settled_in or [b.number for b in [self.store.last_issued(
                contract, before=plan.period)] if b is not None]
            # A credit note's positive amounts are what the seller owes: every line
            # changes sign (the settlement credit becomes the positive part).
            credit_lines = [ln.model_copy(update={"quantity": -ln.quantity}) for ln in lines]
            notes = [text["credit"].format(invoices=", ".join(corrected)), *usage_notes]
            return Invoice(
                **common, type_code=InvoiceTypeCode.CREDIT_NOTE,
                preceding_invoices=[PrecedingInvoice(number=n) for n in corrected],
                notes=[Note(text="\n".join(notes))], payment_terms=text["credit_terms"],
                lines=credit_lines)
        notes = [text["pay"].format(invoice=number, contract=contract), text["bank"],
                 *usage_notes]
        return Invoice(
            **common, due_date=plan.due_date,
            notes=[Note(text="\n".join(notes))],  # Peppol allows one document note
            payment=PaymentInstructions(
                means_code="58", means_text=text["means"].format(bank=s.bank_name),
                remittance_information=s.payment_reference.format(invoice=number,
                                                                  contract=contract),
                credit_transfers=[CreditTransfer(account_id=s.iban, account_name=s.seller_name,
                                                 bic=s.bic)]),
            payment_terms=text["terms"].format(due=_fmt(plan.due_date), days=plan.term_days),
            charges=charges, lines=lines, vat_breakdown=breakdown)

    def _seller(self) -> Party:
        s = self.settings
        return Party(
            name=s.seller_name, trading_name=s.seller_trading_name,
            legal_registration_id=Identifier(value=s.seller_registration_id, scheme="0218"),
            vat_id=s.seller_vat_id,
            electronic_address=ElectronicAddress(value=s.seller_vat_id, scheme="9939"),
            address=Address(line1=s.seller_address.line1, city=s.seller_address.city,
                            postal_code=s.seller_address.postal_code,
                            country=s.seller_address.country),
            contact=Contact(telephone=s.seller_phone, email=s.seller_email))


def _month_share(plan: Plan) -> Decimal:
    """1 for a whole month; the share of days for a contract's first, partial month."""
    days = (plan.period.last_day - plan.start).days + 1
    if days == plan.period.days:
        return Decimal(1)
    return (Decimal(days) / plan.period.days).quantize(Decimal("0.0001"),
                                                       rounding=ROUND_HALF_UP)


def _object(mp: MeteringPoint) -> str:
    a = mp.address
    return ", ".join(p for p in (a.line1, a.city, a.postal_code) if p)


def _buyer(c: UtilityCustomer) -> Party:
    address = None
    if c.vat_id and c.vat_id.startswith("LV"):
        address = ElectronicAddress(value=c.vat_id, scheme="9939")
    elif c.registration_id:
        address = ElectronicAddress(value=c.registration_id, scheme="0218")
    return Party(
        name=c.name, identifiers=[Identifier(value=c.id)], vat_id=c.vat_id,
        legal_registration_id=Identifier(value=c.registration_id, scheme="0218")
        if c.registration_id else None,
        electronic_address=address,
        address=Address(line1=c.address.line1, city=c.address.city,
                        postal_code=c.address.postal_code, country=c.address.country),
        contact=Contact(email=c.email) if c.email else None)



def _net(lines: list[InvoiceLine]) -> Decimal:
    return sum((line_net_amount(ln) for ln in lines), ZERO)


def _exact_fee_vat(lines: list[InvoiceLine], charges: list[AllowanceCharge],
                   fee_vat: list[Decimal], rate: Decimal) -> list[VatBreakdown]:
    """The VAT breakdown that makes each fee cost exactly its amount including VAT.

    Without fees the VAT is round(T × rate). A fee of gross G adds its net n =
    round(G / (1 + rate)) to the taxable amount, so the computed VAT becomes
    round((T + n) × rate), which may differ by a cent from round(T × rate) + (G − n):
    the customer would pay 2.51 or 51.24. No choice of n alone fixes every case (the
    customer's total X + round(X × rate) skips some cents as X grows by one), and the
    reconnection fee's VAT must be exactly 8.89 anyway. So when the two differ, the
    breakdown is stated as the VAT of the rest plus the fees' exact VAT: the taxable
    amount is still exactly lines + charges (BR-S-08), the totals still add up
    (BR-CO-13..16), and the tax amount is within the one-unit rounding tolerance that
    BR-CO-17 allows (at most a cent per fee). Empty: the computed breakdown is exact."""
    if not fee_vat:
        return []
    fee_nets = sum((c.amount for c in charges), ZERO) + sum(
        (line_net_amount(ln) for ln in lines if ln.item.sellers_id == "reconnection"), ZERO)
    taxable = _net(lines) + sum((c.amount for c in charges), ZERO)
    rest = taxable - fee_nets
    wanted = money(rest * rate / 100) + sum(fee_vat, ZERO)
    if wanted == money(taxable * rate / 100):
        return []
    return [VatBreakdown(taxable_amount=money(taxable), tax_amount=wanted, category="S",
                         rate=rate.quantize(Decimal("0.01")))]


def _previous_disconnection_date(store: UtilityStore, recon: Reconnection) -> dt.date | None:
    from plugins.utility.supply import previous_late_payment

    if recon.disconnection is None:
        return None
    previous = previous_late_payment(store, recon.disconnection)
    return previous.date if previous else None
