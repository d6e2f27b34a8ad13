"""From readings to one invoice per contract and month.

Rules (each tested in tests/utility/):

* Consumption: the latest reading counted for the month minus the last actual reading
  billed before. Readings carry a cumulative register that runs on across meter changes.
* No reading for the month: the estimate is the average daily consumption between the
  last actual reading and the earliest actual reading at most 12 months (365 days) before
  it, times the days billed, rounded to whole kWh. A contract with fewer than two readings
  a day apart has no history: its declared monthly consumption (``expected_kwh``) times
  the share of the month billed, or 0 kWh when none was declared (only the fixed
  components are billed; the next actual reading settles everything).
* Settlement: when an actual reading follows estimated months, the invoice bills the
  whole consumption since the last actual reading and credits the kWh billed as estimated
  (at today's prices, per kWh component), naming the estimated invoices.
* Prices: tariff components valid on the last day of the month; VAT rate valid on that
  day. Fixed monthly components are prorated by days in the first month of a contract.
* Fees include VAT: the net is fee / (1 + rate), rounded to the cent; the paper fee is a
  document-level charge, the reconnection fee a line.
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
    Item,
    ItemAttribute,
    LineVat,
    Note,
    Party,
    PaymentInstructions,
    Price,
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
    window_period,
)
from plugins.utility.models import Contract, MeteringPoint, TariffComponent, UtilityCustomer
from plugins.utility.settings import UtilitySettings
from plugins.utility.store import Bill, StoredReading, UtilityError, UtilityStore

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
                     "patēriņš {kwh} kWh ir aprēķināts; starpību ieskaitīsim nākamajā rēķinā.",
        "settled": "Objektam {mp} iekļauts aprēķinātā patēriņa pārrēķins (rēķini {invoices}).",
        "estimated_line": "Aprēķināts patēriņš (rādījums nav saņemts)",
        "actual_line": "Patēriņš no {start} līdz {end}: rādījums {reading}",
        "settlement": "Pārrēķins: aprēķinātais patēriņš",
        "settlement_note": "Atskaitīts patēriņš, kas aprēķināts rēķinos {invoices}",
        "reconnection": "Pieslēguma atjaunošana",
        "reconnection_note": "Atjaunots {date} pēc atslēgšanas par kavētu maksājumu",
        "paper": "Papīra rēķina maksa ({fee} EUR ar PVN)",
        "terms": "Apmaksāt līdz {due}.",
        "means": "Pārskaitījums, {bank}",
        "meter": "Skaitītājs", "point": "Objekts",
    },
    "en": {
        "pay": "Your payment must quote the invoice number {invoice} and the contract number "
               "{contract}.",
        "bank": "A payment counts on the day the money reaches our account; a transfer "
                "between banks takes more than one working day.",
        "estimated": "No reading for {mp} came in the reading window (27th to 3rd): "
                     "the consumption of {kwh} kWh is estimated; the difference will be "
                     "settled on the next invoice.",
        "settled": "For {mp}, this invoice settles the estimated consumption (invoices "
                   "{invoices}).",
        "estimated_line": "Estimated consumption (no reading received)",
        "actual_line": "Consumption from {start} to {end}: reading {reading}",
        "settlement": "Settlement: consumption billed as estimated",
        "settlement_note": "Credits the consumption estimated on invoices {invoices}",
        "reconnection": "Reconnection",
        "reconnection_note": "Reconnected on {date} after a disconnection for late payment",
        "paper": "Paper invoice fee ({fee} EUR incl. VAT)",
        "terms": "Pay by {due}.",
        "means": "Credit transfer, {bank}",
        "meter": "Meter", "point": "Metering point",
    },
}


def whole_kwh(value: Decimal) -> Decimal:
    return value.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def net_of(gross: Decimal, vat_rate: Decimal) -> Decimal:
    """The net amount of a VAT-inclusive fee: 51.23 at 21 % → 42.34 (VAT 8.89)."""
    return money(gross * 100 / (100 + vat_rate))


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
    """One metering point's part of a month's invoice."""

    mp: MeteringPoint
    before: MeterState
    kwh: Decimal  # billed this month (actual since last actual reading, or the estimate)
    estimated: bool
    settled_kwh: Decimal  # estimated kWh credited back (0 when none)
    settled_in: list[str]
    reading: StoredReading | None
    in_window_on: dt.date | None  # date of an in-window reading, for the e-invoice date
    after: MeterState


@dataclass
class Plan:
    """Everything an invoice needs except its number."""

    contract: Contract
    customer: UtilityCustomer
    period: Period
    start: dt.date
    meters: list[MeterBill]
    tariffs: dict[str, list[TariffComponent]]
    vat_rate: Decimal
    paper: bool
    issue_date: dt.date
    due_date: dt.date
    reconnections: list[tuple[int, dt.date]]

    @property
    def estimated(self) -> bool:
        return any(m.estimated for m in self.meters)

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
        return {"meters": meters, "reconnections": [i for i, _ in self.reconnections]}


class Biller:
    """Plans and writes the month's invoices for a supplier."""

    def __init__(self, store: UtilityStore, settings: UtilitySettings) -> None:
        self.store = store
        self.settings = settings

    # ------------------------------------------------------------------ planning

    def plan(self, contract: Contract, period: Period, *, paper: bool) -> Plan:
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
            issue = default_issue_date(period, self.settings.issue_day)
        else:
            dates = [m.in_window_on for m in meters]
            complete = None if any(d is None for d in dates) else max(d for d in dates if d)
            issue = e_invoice_issue_date(period, complete)
        reconnections = self.store.unbilled_reconnections(contract.number, period.window[1])
        return Plan(contract, customer, period, start, meters, tariffs, vat, paper, issue,
                    due_date(issue, e_invoice=not paper), reconnections)

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
        # Readings not billed yet: after the last actual reading used, counted for this
        # month or (arrived while an earlier month was being issued) before it.
        current = [r for r in readings if r.how != "contract" and r.period <= period
                   and r.date > before.actual_date]
        if current:
            reading = current[-1]
            kwh = reading.cumulative - before.actual_cumulative
            in_window = [r.date for r in current if window_period(r.date) == period]
            after = MeterState(reading.cumulative, reading.cumulative, reading.date)
            return MeterBill(mp, before, kwh, False, before.estimated_kwh,
                             list(before.estimated_in), reading,
                             max(in_window) if in_window else None, after)
        days = (period.last_day - start).days + 1
        history = [r for r in readings if r.period < period or r.how == "contract"]
        kwh = self.estimate(contract, history, days, period.days)
        after = MeterState(before.billed_cumulative + kwh, before.actual_cumulative,
                           before.actual_date, before.estimated_kwh + kwh,
                           list(before.estimated_in))
        return MeterBill(mp, before, kwh, True, ZERO, [], None, None, after)

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

    # ------------------------------------------------------------------ the invoice

    def invoice(self, plan: Plan, number: str) -> Invoice:
        s = self.settings
        lang = plan.customer.language
        text = TEXT[lang]
        contract = plan.contract.number
        lines: list[InvoiceLine] = []
        notes: list[str] = [text["pay"].format(invoice=number, contract=contract),
                            text["bank"]]
        vat = LineVat(category="S", rate=plan.vat_rate)
        share = _month_share(plan)

        def add(quantity: Decimal, unit: str, price: Decimal, name: str, sellers_id: str,
                mp: MeteringPoint | None = None, note: str | None = None) -> None:
            attributes = []
            if mp is not None:
                attributes = [ItemAttribute(name=text["point"], value=mp.id),
                              ItemAttribute(name=text["meter"], value=mp.meter)]
            lines.append(InvoiceLine(
                id=str(len(lines) + 1), quantity=quantity, unit=unit, price=Price(net=price),
                vat=vat, note=note,
                item=Item(name=name, sellers_id=sellers_id, attributes=attributes,
                          description=_object(mp) if mp else None)))

        for m in plan.meters:
            if m.estimated:
                usage_note = text["estimated_line"]
                notes.append(text["estimated"].format(mp=m.mp.id, kwh=m.kwh))
            else:
                assert m.reading is not None
                usage_note = text["actual_line"].format(
                    start=m.before.actual_date.strftime("%d.%m.%Y"),
                    end=m.reading.date.strftime("%d.%m.%Y"), reading=m.reading.value)
            if m.settled_kwh:
                notes.append(text["settled"].format(mp=m.mp.id,
                                                    invoices=", ".join(m.settled_in)))
            for c in plan.tariffs[m.mp.id]:
                name = c.name_lv if lang == "lv" else c.name_en
                if c.basis == "kwh":
                    add(m.kwh, "KWH", c.price, name, c.component, m.mp, usage_note)
                    if m.settled_kwh:
                        add(-m.settled_kwh, "KWH", c.price, f"{name}: {text['settlement']}",
                            f"{c.component}-settlement", m.mp,
                            text["settlement_note"].format(invoices=", ".join(m.settled_in)))
                else:
                    add(share, "MON", c.price, name, c.component, m.mp)
        for _, day in plan.reconnections:
            add(Decimal(1), "C62", net_of(s.reconnection_fee, plan.vat_rate),
                text["reconnection"], "reconnection",
                note=text["reconnection_note"].format(date=day.strftime("%d.%m.%Y")))
        charges = []
        if plan.paper and s.paper_fee:
            fee = f"{s.paper_fee:.2f}".replace(".", "," if lang == "lv" else ".")
            charges.append(AllowanceCharge(
                amount=net_of(s.paper_fee, plan.vat_rate), vat_category="S",
                vat_rate=plan.vat_rate, reason=text["paper"].format(fee=fee)))
        due = plan.due_date.strftime("%d.%m.%Y")
        single = plan.meters[0].mp if len(plan.meters) == 1 else None
        buyer = _buyer(plan.customer)
        # Peppol BIS 3.0 needs a buyer endpoint from its code list (9939 VAT, 0218
        # register): businesses have one, households do not, so their invoices are
        # plain EN 16931 (a UBL writer's default would claim Peppol).
        peppol = buyer.electronic_address is not None
        return Invoice(
            number=number, issue_date=plan.issue_date, currency="EUR", due_date=plan.due_date,
            buyer_reference=contract, contract_reference=contract,
            business_process=PEPPOL_PROCESS if peppol else None,
            specification_id=None if peppol else EN16931,
            invoiced_object=Identifier(value=single.id, scheme="AET") if single else None,
            invoice_period=InvoicePeriod(start=plan.start, end=plan.period.last_day),
            notes=[Note(text="\n".join(notes))],  # Peppol allows one document note
            seller=self._seller(), buyer=buyer,
            payment=PaymentInstructions(
                means_code="58", means_text=text["means"].format(bank=s.bank_name),
                remittance_information=s.payment_reference.format(invoice=number,
                                                                  contract=contract),
                credit_transfers=[CreditTransfer(account_id=s.iban, account_name=s.seller_name,
                                                 bic=s.bic)]),
            payment_terms=text["terms"].format(due=due),
            charges=charges, lines=lines)

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

