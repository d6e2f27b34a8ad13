"""Conformance suites: what every format, channel and source must do, in one call.

    from gateway.testing import check_format

    def test_markdown_conforms():
        check_format("markdown")

Each suite runs its checks on a gateway of its own (a temporary data directory, or the
one given), collects every failure and raises one :class:`ConformanceError` listing
them; on success it returns a :class:`Report` of what was checked and what did not
apply (a render-only format has no round trip).
"""

from gateway.testing.channels import check_channel
from gateway.testing.formats import check_format, invoice_differences
from gateway.testing.report import ConformanceError, Report
from gateway.testing.sources import check_source

__all__ = ["ConformanceError", "Report", "check_channel", "check_format", "check_source",
           "invoice_differences"]
