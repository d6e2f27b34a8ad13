"""The portal's extension point, ``portal_register_pages``.

Its specification is part of the one contract, :mod:`gateway.hookspecs` (see
``portal_register_pages`` there and docs/plugins.md); this module re-exports it for
plugins written against the portal's earlier, separate hook module.
"""

from gateway.hookspecs import portal_register_pages

__all__ = ["portal_register_pages"]
