"""The customer portal's "Skaitītāja rādījums / Meter reading" page.

Registered through the portal's ``portal_register_pages`` hook: the portal checks the
login and the CSRF token, this module shows the logged-in customer's own metering points
with their latest reading and takes a new one through :meth:`UtilityStore.add_reading`,
the same checks as the CLI, CSV import and HTTP API, recorded with ``how = "portal"``
and the account's e-mail as ``by``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway import first_error
from plugins.utility.models import Reading
from plugins.utility.store import (
    AFTER_INVOICE,
    ON_TIME,
    OUTSIDE,
    ReadingOutcome,
    UtilityError,
    UtilityStore,
)

PATH = "/readings"
TEMPLATES = Path(__file__).parent / "templates"

TEXTS: dict[str, tuple[str, str]] = {
    "reading_title": ("Skaitītāja rādījums", "Meter reading"),
    "reading_tab": ("Skaitītāja rādījums", "Meter reading"),
    "reading_intro": (
        "Rādījumus nododiet no katra mēneša 27. datuma līdz nākamā mēneša 3. datumam: "
        "izšķir diena, kad rādījumu nododat. Ja rādījums nav nodots šajā laikā, mēneša "
        "patēriņu aprēķinām pēc 12 mēnešu vidējā, un vēlāk nodots rādījums tiek saglabāts "
        "un izlīdzina starpību nākamajā rēķinā.",
        "Send your reading between the 27th of each month and the 3rd of the next: what "
        "counts is the day you send it. Without a reading in this window the month is "
        "billed by the average of the last 12 months; a reading sent later is kept and "
        "settles the difference on the next invoice."),
    "reading_points": ("Jūsu skaitītāji", "Your meters"),
    "reading_mp": ("Objekts", "Metering point"),
    "reading_meter": ("Skaitītājs", "Meter"),
    "reading_address": ("Adrese", "Address"),
    "reading_last": ("Pēdējais rādījums", "Last reading"),
    "reading_date": ("Datums", "Date"),
    "reading_via": ("Nodots", "Sent via"),
    "reading_new": ("Nodot rādījumu", "Send a reading"),
    "reading_value": ("Rādījums, kWh", "Reading, kWh"),
    "reading_send": ("Nodot rādījumu", "Send reading"),
    "reading_change": ("Skaitītājs ir nomainīts", "The meter was replaced"),
    "reading_change_hint": ("Rādījums ir jaunā skaitītāja rādījums.",
                            "The reading is the new meter's."),
    "reading_old_final": ("Vecā skaitītāja pēdējais rādījums, kWh",
                          "Old meter's last reading, kWh"),
    "reading_new_start": ("Jaunā skaitītāja sākuma rādījums, kWh",
                          "New meter's start reading, kWh"),
    "reading_new_meter": ("Jaunā skaitītāja numurs", "New meter's number"),
    "reading_none": ("Jums nav neviena skaitītāja.", "You have no meters."),
    "via_portal": ("portālā", "portal"), "via_cli": ("operators", "operator"),
    "via_csv": ("fails", "file"), "via_api": ("lietotne", "app"),
    "via_contract": ("līguma sākumā", "contract start"), "via_demo": ("demo", "demo"),
    "reading_accepted": (
        "Rādījums {value} kWh ({date}) saņemts: patēriņš {consumption} kWh, tiks izmantots "
        "{period} rēķinā.",
        "Reading {value} kWh of {date} received: consumption {consumption} kWh, counts for "
        "the {period} invoice."),
    "reading_unchanged": ("Šis rādījums ({value} kWh, {date}) jau ir saņemts.",
                          "This reading ({value} kWh, {date}) was already received."),
    "reading_outside": (
        "Rādījums nodots {date}, ārpus nodošanas laika (27. līdz 3. datums; pēdējais bija "
        "{start}–{end}): tas nav {missed} rādījums ({missed} rēķinā izmantosim laikā nodotu "
        "rādījumu vai aprēķinu pēc 12 mēnešu vidējā); rādījums ir saglabāts un izlīdzinās "
        "starpību {period} rēķinā.",
        "Sent on {date}, outside the reading window (27th to 3rd; the last one was "
        "{start}–{end}): it is not the {missed} reading ({missed} is billed by a reading sent "
        "in its window, or else by the 12-month average); it is kept and settles the "
        "difference on the {period} invoice."),
    "reading_dated": (
        "Rādījums datēts {date}, bet nodots {arrived}, {period} nodošanas laikā: tas tiks "
        "izmantots {period} rēķinā.",
        "The reading is dated {date} but was sent on {arrived}, in the {period} reading "
        "window: it counts for the {period} invoice."),
    "reading_issued": (
        "Līguma {contract} {late} rēķins jau ir izrakstīts; rādījums ir saglabāts un tiks "
        "izmantots {period} rēķinā, kurā tiks izlīdzināta starpība.",
        "The {late} invoice of contract {contract} was already issued; the reading is kept "
        "and used for the {period} invoice, which settles the difference."),
    "reading_lower": (
        "Rādījums {value} ir mazāks par iepriekšējo rādījumu {previous} ({prev_date}), tāpēc "
        "tas netika pieņemts. Ja skaitītājs ir nomainīts, atzīmējiet “Skaitītājs ir "
        "nomainīts”.",
        "{value} is lower than the previous reading {previous} of {prev_date}, so it was "
        "refused. If the meter was replaced, tick “The meter was replaced”."),
    "reading_future": ("Rādījumu nevar datēt vēlāk par šodienu ({today}).",
                       "A reading cannot be dated after today ({today})."),
    "reading_order": ("Rādījumiem jābūt datumu secībā; pēdējais rādījums ir {previous} "
                      "({prev_date}).",
                      "Readings come in date order; the latest reading is {previous} of "
                      "{prev_date}."),
    "reading_same_day": ("Šajā dienā jau ir rādījums ({previous}); nododiet rādījumu citā "
                         "dienā.",
                         "There is already a reading on that day ({previous}); send a reading "
                         "for another day."),
    "reading_unknown_mp": ("Šāda skaitītāja jums nav.", "You have no such meter."),
    "reading_bad_value": ("Ievadiet rādījumu kā skaitli, piemēram, 12345.",
                          "Enter the reading as a number, e.g. 12345."),
    "reading_bad_date": ("Ievadiet datumu, piemēram, 28.10.2026.",
                         "Enter a date, e.g. 28.10.2026."),
    "reading_refused": ("Rādījums netika pieņemts: {text}", "The reading was refused: {text}"),
}


def register_pages(register: Any) -> None:
    register(path=PATH, label=TEXTS["reading_tab"], get=show, post=submit,
             templates=TEMPLATES, texts=TEXTS)


def _store(request: Any) -> UtilityStore:
    source = request.plugins.sources.get("utility")
    return UtilityStore(source.data_dir / source.settings.database)


def _today(request: Any) -> dt.date:
    """The day a reading arrives: the window is judged by it."""
    return request.plugins.sources.get("utility").today()  # type: ignore[no-any-return]


def _fmt(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


def _kwh(value: Decimal, lang: str) -> str:
    """A reading or consumption as written in the page's language (1234,5 in Latvian)."""
    text = str(value)
    return text.replace(".", ",") if lang == "lv" else text


def _number(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw.strip().replace(" ", "").replace(",", "."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _date(raw: str, today: dt.date) -> dt.date | None:
    raw = raw.strip()
    if not raw:
        return today
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(raw, pattern).date()
        except ValueError:
            pass
    return None


def _render(request: Any, store: UtilityStore, status_code: int = 200,
            message: list[str] | None = None, error: str | None = None,
            form: dict[str, str] | None = None) -> Any:
    points = store.customer_metering_points(request.customer_id)
    return request.render("utility_reading.html", status_code=status_code, points=points,
                          message=message or [], error=error, form=form or {},
                          today_iso=_today(request).isoformat(), fmt=_fmt)


def show(request: Any) -> Any:
    store = _store(request)
    try:
        return _render(request, store)
    finally:
        store.close()


def submit(request: Any) -> Any:
    store = _store(request)
    try:
        return _submit(request, store)
    finally:
        store.close()


def _submit(request: Any, store: UtilityStore) -> Any:
    form = request.form
    t = request.t
    mine = {mp.id: (mp, latest) for mp, latest in
            store.customer_metering_points(request.customer_id)}
    mp_id = form.get("metering_point", "").strip()
    if mp_id not in mine:
        # Another customer's metering point is as unknown as a made-up one.
        return _render(request, store, 404, error=t("reading_unknown_mp"))
    mp, latest = mine[mp_id]
    value = _number(form.get("value", ""))
    if value is None:
        return _render(request, store, 400, error=t("reading_bad_value"), form=form)
    day = _date(form.get("date", ""), _today(request))
    if day is None:
        return _render(request, store, 400, error=t("reading_bad_date"), form=form)
    change = bool(form.get("meter_change"))
    extra: dict[str, Any] = {}
    if change:
        for name in ("old_meter_final", "new_meter_start"):
            if form.get(name, "").strip():
                number = _number(form[name])
                if number is None:
                    return _render(request, store, 400, error=t("reading_bad_value"),
                                   form=form)
                extra[name] = number
        if form.get("new_meter", "").strip():
            extra["new_meter"] = form["new_meter"].strip()
    try:
        reading = Reading(metering_point=mp_id, date=day, value=value, meter_change=change,
                          by=request.email, how="portal", **extra)
    except ValidationError as exc:
        loc, msg = first_error(exc)
        text = f"{loc}: {msg}"
        return _render(request, store, 400, error=t("reading_refused", text=text), form=form)
    try:
        outcome = store.add_reading(reading, today=_today(request))
    except UtilityError as exc:
        return _render(request, store, 409, error=_refusal(request, reading, latest, exc),
                       form=form)
    return _render(request, store, message=_accepted(request, outcome, mp.contract))


def _refusal(request: Any, r: Reading, latest: Any, exc: UtilityError) -> str:
    """The store's refusal in the page's language; the cases are those of
    :meth:`UtilityStore.add_reading`, told apart by the latest reading it compared with."""
    t, lang = request.t, request.lang
    previous = {"previous": _kwh(latest.value, lang), "prev_date": _fmt(latest.date)}
    if r.date > _today(request):
        return str(t("reading_future", today=_fmt(_today(request))))
    if r.date < latest.date:
        return str(t("reading_order", **previous))
    if r.date == latest.date:
        return str(t("reading_same_day", **previous))
    if not r.meter_change and r.value < latest.value:
        return str(t("reading_lower", value=_kwh(r.value, lang), **previous))
    text = str(exc)
    return str(t("reading_refused", text=text.split(": ", 1)[-1]))


def _accepted(request: Any, outcome: ReadingOutcome, contract: str) -> list[str]:
    t, lang = request.t, request.lang
    r = outcome.reading
    if outcome.status == "unchanged":
        return [t("reading_unchanged", value=_kwh(r.value, lang), date=_fmt(r.date))]
    lines = [t("reading_accepted", value=_kwh(r.value, lang), date=_fmt(r.date),
               consumption=_kwh(outcome.consumption, lang), period=r.period)]
    if r.timing == AFTER_INVOICE:
        late = r.period.shift(-1)
        lines.append(t("reading_issued", late=late, contract=contract, period=r.period))
    elif r.timing == OUTSIDE:
        missed = r.period.shift(-1)
        start, end = missed.shift(-1).window
        lines.append(t("reading_outside", date=_fmt(r.arrived), start=_fmt(start),
                       end=_fmt(end), missed=missed, period=r.period))
    elif r.timing == ON_TIME and outcome.message:
        lines.append(t("reading_dated", date=_fmt(r.date), arrived=_fmt(r.arrived),
                       period=r.period))
    elif outcome.message:
        lines.append(outcome.message)
    return lines
