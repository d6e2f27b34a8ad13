"""Latvian and English texts of the portal. Keys are short ids; a missing key shows itself."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency

LANGUAGES = ("lv", "en")
LOCALES = {"lv": "lv_LV", "en": "en_GB"}

TEXTS: dict[str, tuple[str, str]] = {
    # key: (lv, en)
    "brand": ("Klientu portāls", "Customer portal"),
    "tagline": ("Rēķini, maksājumi un e-rēķinu iestatījumi vienuviet",
                "Invoices, payments and e-invoice settings in one place"),
    "login": ("Ienākt", "Log in"),
    "logout": ("Iziet", "Log out"),
    "email": ("E-pasts", "E-mail"),
    "password": ("Parole", "Password"),
    "password_again": ("Parole vēlreiz", "Password again"),
    "login_failed": ("Nepareizs e-pasts vai parole.", "Wrong e-mail or password."),
    "login_throttled": ("Pārāk daudz neveiksmīgu mēģinājumu. Mēģiniet vēlreiz pēc {minutes} min.",
                        "Too many failed attempts. Try again in {minutes} min."),
    "csrf_failed": ("Forma ir novecojusi. Lūdzu, mēģiniet vēlreiz.",
                    "The form has expired. Please try again."),
    "password_too_short": ("Parolei jābūt vismaz 10 rakstzīmes garai.",
                           "The password must be at least 10 characters long."),
    "passwords_differ": ("Paroles nesakrīt.", "The passwords do not match."),
    "invite_title": ("Izveidot portāla kontu", "Create your portal account"),
    "invite_invalid": ("Šis uzaicinājums jau izmantots vai vairs nav derīgs.",
                       "This invitation was used already or has expired."),
    "create_account": ("Izveidot kontu", "Create account"),
    "overview": ("Pārskats", "Overview"),
    "invoices": ("Rēķini", "Invoices"),
    "contracts": ("Līgumi", "Contracts"),
    "contract": ("Līgums", "Contract"),
    "einvoice": ("E-rēķini", "E-invoices"),
    "export": ("Izraksts", "Export"),
    "operator": ("Operators", "Operator"),
    "current_invoices": ("Aktuālie rēķini", "Current invoices"),
    "archive": ("Rēķinu arhīvs", "Invoice archive"),
    "number": ("Numurs", "Number"),
    "issued": ("Izrakstīts", "Issued"),
    "due": ("Apmaksas termiņš", "Due date"),
    "period": ("Periods", "Period"),
    "amount": ("Summa", "Amount"),
    "amount_due": ("Summa apmaksai", "Amount due"),
    "status": ("Statuss", "Status"),
    "all": ("Visi", "All"),
    "from": ("No", "From"),
    "to": ("Līdz", "To"),
    "filter": ("Atlasīt", "Filter"),
    "reset": ("Notīrīt", "Clear"),
    "no_invoices": ("Rēķinu nav.", "No invoices."),
    "open": ("Atvērt", "Open"),
    "st_delivered": ("Nosūtīts", "Delivered"),
    "st_pending": ("Gaida nosūtīšanu", "Being sent"),
    "st_email_failed": ("E-pasts nav piegādāts", "E-mail failed"),
    "st_failed": ("Piegāde neizdevās", "Delivery failed"),
    "st_portal": ("Portālā", "In the portal"),
    "email_failed_note": (
        "Rēķinu neizdevās nosūtīt uz Jūsu e-pastu ({error}). Tas ir pieejams šeit portālā.",
        "We could not e-mail this invoice to you ({error}). It is available here in the portal."),
    "new_invoice_notice": ("Jauns rēķins {number} par {amount}, apmaksas termiņš {due}.",
                           "New invoice {number} for {amount}, due {due}."),
    "credit_note": ("Kredītrēķins", "Credit note"),
    "invoice": ("Rēķins", "Invoice"),
    "seller": ("Pārdevējs", "Seller"),
    "buyer": ("Pircējs", "Buyer"),
    "payment_reference": ("Maksājuma mērķis", "Payment reference"),
    "iban": ("Konts (IBAN)", "Account (IBAN)"),
    "pay_to": ("Saņēmējs", "Payee"),
    "net_total": ("Summa bez PVN", "Total without VAT"),
    "vat_total": ("PVN", "VAT"),
    "total_with_vat": ("Kopā ar PVN", "Total with VAT"),
    "paid": ("Samaksāts", "Paid"),
    "lines": ("Rēķina rindas", "Invoice lines"),
    "item": ("Pakalpojums", "Item"),
    "quantity": ("Daudzums", "Quantity"),
    "price": ("Cena", "Price"),
    "net": ("Summa", "Net"),
    "vat_rate": ("PVN %", "VAT %"),
    "downloads": ("Lejupielādēt", "Download"),
    "archived": ("arhīva kopija", "archived copy"),
    "on_demand": ("sagatavots pēc pieprasījuma", "made on request"),
    "history": ("Vēsture", "History"),
    "when": ("Laiks", "When"),
    "event": ("Notikums", "Event"),
    "ev_accepted": ("Rēķins saņemts", "Invoice received"),
    "ev_rendered": ("Sagatavots {format}", "Rendered {format}"),
    "ev_queued": ("Ierindots sūtīšanai: {channel}", "Queued for {channel}"),
    "ev_emailed": ("Nosūtīts pa e-pastu", "E-mailed"),
    "ev_email_failed": ("E-pasts nav piegādāts", "E-mail failed"),
    "ev_sftp": ("Augšupielādēts SFTP", "Uploaded over SFTP"),
    "ev_sftp_downloaded": ("Lejupielādēts no SFTP", "Downloaded over SFTP"),
    "ev_sftp_mailbox": ("Ievietots Jūsu SFTP pastkastītē", "Placed in your SFTP mailbox"),
    "ev_acknowledged": ("Saņemšana apstiprināta (SFTP)", "Receipt confirmed (SFTP)"),
    "ev_portal": ("Publicēts portālā", "Published in the portal"),
    "ev_delivered": ("Piegādāts: {channel}", "Delivered: {channel}"),
    "ev_failed": ("Piegāde neizdevās: {channel}", "Delivery failed: {channel}"),
    "ev_retry": ("Piegāde tiks atkārtota: {channel}", "Delivery will be retried: {channel}"),
    "ev_fallback": ("Rezerves kanāls: {to}", "Fallback channel: {to}"),
    "ev_requeued": ("Atkārtota sūtīšana: {channel}", "Sent again: {channel}"),
    "ev_viewed": ("Skatīts portālā", "Viewed in the portal"),
    "ev_downloaded": ("Lejupielādēts portālā: {format}", "Downloaded in the portal: {format}"),
    "signup_title": ("Pieteikties e-rēķiniem", "Sign up for e-invoices"),
    "signup_intro": ("Izmaiņas attiecas uz nākamajiem rēķiniem. Visi rēķini vienmēr ir "
                     "pieejami arī šeit portālā.",
                     "Changes apply from the next invoice on. Every invoice is always "
                     "available here in the portal as well."),
    "formats": ("Formāti", "Formats"),
    "channels": ("Saņemšanas veidi", "Delivery"),
    "by_email": ("Sūtīt pa e-pastu", "Send by e-mail"),
    "email_addresses": ("E-pasta adreses (atdalītas ar komatu)",
                        "E-mail addresses (separated by commas)"),
    "by_sftp-push": ("Augšupielādēt uz Jūsu SFTP serveri", "Upload to your SFTP server"),
    "by_sftp-mailbox": ("Lejupielādēt no mūsu SFTP pastkastītes",
                        "Download from our SFTP mailbox"),
    "language": ("Valoda", "Language"),
    "paper": ("Papīra rēķins pa pastu (2,50 EUR)", "Paper invoice by post (2.50 EUR)"),
    "paper_legend": ("Papīra rēķins", "Paper invoice"),
    "paper_hint": ("Maksa par papīra rēķinu tiek pievienota katram rēķinam.",
                   "The paper invoice fee is added to every invoice."),
    "save": ("Saglabāt", "Save"),
    "saved": ("Iestatījumi saglabāti. Tie attiecas uz nākamajiem rēķiniem.",
              "Settings saved. They apply from the next invoice on."),
    "no_change": ("Nekas netika mainīts.", "Nothing was changed."),
    "choose_format": ("Izvēlieties vismaz vienu formātu.", "Choose at least one format."),
    "need_address": ("Norādiet vismaz vienu e-pasta adresi.", "Give at least one e-mail address."),
    "bad_address": ("Nederīga e-pasta adrese: {address}", "Not an e-mail address: {address}"),
    "changes": ("Izmaiņu vēsture", "Change history"),
    "changed_by": ("Mainīja", "Changed by"),
    "export_title": ("Rēķinu vēstures izraksts", "Invoice history export"),
    "year": ("Gads", "Year"),
    "download_csv": ("Lejupielādēt CSV", "Download CSV"),
    "download_pdf": ("Lejupielādēt PDF", "Download PDF"),
    "download_lines": ("Visas rēķinu rindas (CSV)", "Every invoice line (CSV)"),
    "export_intro": ("Gada rēķinu saraksts grāmatvedībai: CSV tabulai vai PDF arhīvam.",
                     "A year's invoices for your records: CSV for spreadsheets, PDF to file."),
    "failed_more": ("Parādītas {shown} no {total}; visas uzskaita gateway status --failed.",
                    "Showing {shown} of {total}; gateway status --failed lists them all."),
    "export_pdf_too_many": (
        "{year}. gadā ir {count} rēķini, bet vienā PDF izrakstā var būt ne vairāk kā {most}. "
        "Lejupielādējiet CSV vai PDF pa mēnešiem.",
        "{year} has {count} invoices; one PDF export holds at most {most}. Download the CSV, "
        "or the PDF month by month."),
    "total": ("Kopā", "Total"),
    "not_found": ("Lapa nav atrasta.", "Page not found."),
    "back": ("Atpakaļ", "Back"),
    "customer_no": ("Klienta nr.", "Customer no."),
    "invoice_count": ("Rēķini", "Invoices"),
    "last_invoice": ("Pēdējais rēķins", "Latest invoice"),
    "to_pay": ("Apmaksai", "To pay"),
    "how_to_pay": ("Kā samaksāt", "How to pay"),
    "pay_hint": ("Maksājumā norādiet maksājuma mērķi tieši tā, kā parādīts.",
                 "Quote the payment reference exactly as shown."),
    "prev": ("Iepriekšējie", "Previous"),
    "next": ("Nākamie", "Next"),
    "page": ("Lapa", "Page"),
    "customers": ("Klienti", "Customers"),
    "find": ("Meklēt", "Find"),
    "find_invoice": ("Rēķina numurs vai id", "Invoice number or id"),
    "failed_deliveries": ("Neizdevušās un atkārtojamās piegādes",
                          "Failed deliveries and retries"),
    "retry": ("Sūtīt vēlreiz", "Retry"),
    "retried": ("Atkārtoti ierindotas piegādes: {count}", "Deliveries queued again: {count}"),
    "channel": ("Kanāls", "Channel"),
    "attempts": ("Mēģinājumi", "Attempts"),
    "error": ("Kļūda", "Error"),
    "next_attempt": ("Nākamais mēģinājums", "Next attempt"),
    "customer": ("Klients", "Customer"),
    "deliveries": ("Piegādes", "Deliveries"),
    "invite": ("Uzaicināt", "Invite"),
    "invite_link": ("Uzaicinājuma saite (derīga 14 dienas)", "Invitation link (valid 14 days)"),
    "accounts": ("Konti", "Accounts"),
    "none": ("nav", "none"),
    "skip": ("Pāriet uz saturu", "Skip to content"),
    "currency": ("Valūta", "Currency"),
    "error_text": ("{text}", "{text}"),
    "help": ("Palīdzība: +371 67000000", "Help: +371 67000000"),
}


def text(language: str, key: str, **values: object) -> str:
    pair = TEXTS.get(key)
    if pair is None:
        return key
    template = pair[0] if language == "lv" else pair[1]
    return template.format(**values) if values else template


def money(amount: Decimal | str, currency: str, language: str) -> str:
    return _money(str(amount), currency, language)


# Babel formatting is most of a list page's rendering time, and a customer's amounts and
# dates repeat: cache by the values' text.
@functools.lru_cache(maxsize=8192)
def _money(amount: str, currency: str, language: str) -> str:
    return format_currency(Decimal(amount), currency, locale=LOCALES.get(language, "en_GB"))


def date(value: dt.date | str | None, language: str) -> str:
    if value is None or value == "":
        return ""
    return _date(value if isinstance(value, str) else value.isoformat(), language)


@functools.lru_cache(maxsize=8192)
def _date(value: str, language: str) -> str:
    return format_date(dt.date.fromisoformat(value),
                       "medium" if language == "en" else "dd.MM.yyyy",
                       locale=LOCALES.get(language, "en_GB"))


def timestamp(value: float | None, language: str) -> str:
    if value is None:
        return ""
    moment = dt.datetime.fromtimestamp(value)
    return format_datetime(moment, "dd.MM.yyyy HH:mm" if language == "lv" else
                           "d MMM yyyy HH:mm", locale=LOCALES.get(language, "en_GB"))


UNITS: dict[str, tuple[str, str]] = {
    # UN/ECE Rec 20 codes a utility bill uses, as people write them
    "KWH": ("kWh", "kWh"), "MWH": ("MWh", "MWh"), "KWT": ("kW", "kW"), "MTQ": ("m³", "m³"),
    "MON": ("mēn.", "month"), "DAY": ("d.", "day"), "C62": ("gab.", "pcs"),
    "H87": ("gab.", "pcs"), "EA": ("gab.", "pcs"), "HUR": ("h", "h"), "LTR": ("l", "l"),
}


def unit(code: str | None, language: str) -> str:
    if not code:
        return ""
    pair = UNITS.get(code)
    return code if pair is None else (pair[0] if language == "lv" else pair[1])


def number(value: Decimal | str | int | None, language: str) -> str:
    """Plain decimal as written, with the locale's decimal sign (0,1389 in Latvian)."""
    if value is None:
        return ""
    text = format(Decimal(str(value)).normalize(), "f")
    return text.replace(".", ",") if language == "lv" else text


FORMAT_LABELS: dict[str, tuple[str, str]] = {
    "pdf": ("PDF rēķins", "PDF invoice"),
    "ubl": ("E-rēķins UBL (Peppol BIS 3.0 XML)", "E-invoice UBL (Peppol BIS 3.0 XML)"),
    "cii": ("E-rēķins CII (XML)", "E-invoice CII (XML)"),
    "facturx": ("Factur-X (PDF ar iegultu XML)", "Factur-X (PDF with embedded XML)"),
    "csv": ("CSV tabula (Excel)", "CSV spreadsheet (Excel)"),
    "json": ("JSON dati", "JSON data"),
}


def format_label(name: str, description: str, language: str) -> str:
    """Customers choose by what they will open, not by plugin descriptions."""
    pair = FORMAT_LABELS.get(name)
    if pair is None:
        return description or name.upper()
    return pair[0] if language == "lv" else pair[1]
