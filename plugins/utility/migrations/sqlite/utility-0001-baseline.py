"""The utility's tables as the first release made them in utility.db; ``IF NOT EXISTS``
adopts such a file as it is (its later columns come with utility-0002)."""

from yoyo import step

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contracts (
    number TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id),
    start_date TEXT NOT NULL, expected_kwh TEXT);
CREATE TABLE IF NOT EXISTS metering_points (
    id TEXT PRIMARY KEY, contract TEXT NOT NULL REFERENCES contracts(number),
    meter TEXT NOT NULL, tariff TEXT NOT NULL, address TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mp_contract ON metering_points(contract);
CREATE TABLE IF NOT EXISTS tariffs (
    code TEXT NOT NULL, component TEXT NOT NULL, basis TEXT NOT NULL,
    name_lv TEXT NOT NULL, name_en TEXT NOT NULL, price TEXT NOT NULL,
    valid_from TEXT NOT NULL, valid_to TEXT,
    PRIMARY KEY (code, component, valid_from));
CREATE TABLE IF NOT EXISTS vat_rates (
    valid_from TEXT PRIMARY KEY, valid_to TEXT, rate TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY, mp TEXT NOT NULL REFERENCES metering_points(id),
    date TEXT NOT NULL, value TEXT NOT NULL, cumulative TEXT NOT NULL,
    meter_change INTEGER NOT NULL DEFAULT 0, old_meter_final TEXT, new_meter_start TEXT,
    new_meter TEXT, period TEXT NOT NULL, how TEXT NOT NULL, by TEXT NOT NULL,
    received_at REAL NOT NULL, message TEXT);
CREATE INDEX IF NOT EXISTS readings_mp ON readings(mp, date);
CREATE TABLE IF NOT EXISTS reconnections (
    id INTEGER PRIMARY KEY, contract TEXT NOT NULL REFERENCES contracts(number),
    date TEXT NOT NULL, by TEXT NOT NULL, billed_in TEXT);
CREATE TABLE IF NOT EXISTS api_tokens (
    hash TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS bills (
    contract TEXT NOT NULL, period TEXT NOT NULL, number TEXT NOT NULL UNIQUE,
    seq INTEGER NOT NULL, status TEXT NOT NULL, issue_date TEXT, data TEXT NOT NULL,
    invoice_id TEXT, PRIMARY KEY (contract, period));
CREATE TABLE IF NOT EXISTS disconnections (
    id INTEGER PRIMARY KEY, contract TEXT NOT NULL REFERENCES contracts(number),
    date TEXT NOT NULL, reason TEXT NOT NULL, by TEXT NOT NULL, recorded_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS disconnections_contract ON disconnections(contract, date);
CREATE TABLE IF NOT EXISTS fees (
    code TEXT NOT NULL, amount TEXT NOT NULL, valid_from TEXT NOT NULL DEFAULT '',
    valid_to TEXT, PRIMARY KEY (code, valid_from));
"""

steps = [step(statement) for statement in SCHEMA.split(";") if statement.strip()]
