"""The store queries the portal pages with (filters in SQL, counts, contracts)."""

from __future__ import annotations

from tests.portal.conftest import World


def test_filters_counts_and_contracts(world: World) -> None:
    store = world.gw.store
    a = "100234567"
    assert store.count_invoices(customer_id=a) == 3
    assert store.count_invoices() == 4
    assert store.customer_contracts(a) == ["100234567"]
    assert store.customer_contracts("nobody") == []
    october = store.list_invoices(customer_id=a, issued_from="2026-10-01",
                                  issued_to="2026-10-31")
    assert [r.number for r in october] == ["E2610-00123"]
    assert store.count_invoices(customer_id=a, issued_from="2026-10-01") == 2
    assert store.count_invoices(customer_id=a, contract="100234567") == 3
    assert store.count_invoices(customer_id=a, contract="other") == 0
    page = store.list_invoices(customer_id=a, limit=2, offset=1)
    assert [r.number for r in page] == ["E2610-00123", "E2609-00123"]
