"""Where the official XSDs and compiled schematrons live, found through package data.

The artefacts are shipped inside this package (``schemas/``) and located with
:mod:`importlib.resources`, so an installed gateway needs no source checkout. lxml and
Saxon need real files (the XSDs include each other by relative path), so a zipped
installation is refused with a clear message instead of half working.
"""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from pathlib import Path

from gateway import PluginError

UBL_INVOICE_XSD = "ubl-2.1/xsd/maindoc/UBL-Invoice-2.1.xsd"
UBL_CREDIT_NOTE_XSD = "ubl-2.1/xsd/maindoc/UBL-CreditNote-2.1.xsd"
CII_XSD = "cii-d16b/xsd/uncoupled/CII/uncefact/data/standard/CrossIndustryInvoice_100pD16B.xsd"
EN16931_UBL = "schematron/en16931-ubl.xslt"
EN16931_CII = "schematron/en16931-cii.xslt"
PEPPOL_UBL = "schematron/peppol-bis-3-ubl.xslt"
PEPPOL_CII = "schematron/peppol-bis-3-cii.xslt"


@cache
def schemas_dir() -> Path:
    override = os.environ.get("GATEWAY_XML_SCHEMAS_DIR")
    if override:
        return Path(override)
    root = resources.files(__package__) / "schemas"
    path = Path(str(root))
    if not (path / EN16931_UBL).is_file():
        raise PluginError(f"xml_einvoice: schema files not found at {path}; the plugin must be "
                          "installed unzipped with its package data")
    return path


def artefact(relative: str) -> Path:
    path = schemas_dir() / relative
    if not path.is_file():
        raise PluginError(f"xml_einvoice: missing artefact {relative} under {schemas_dir()}")
    return path
