"""The portal's extension point: other plugins add customer pages to the portal.

The portal adds this module to the gateway's plugin manager when its app is made
(``pm.add_hookspecs``), so a plugin implements the hook without importing the portal;
it marks the implementation ``@hookimpl(optionalhook=True)`` so that it still loads
when the portal is not installed::

    @hookimpl(optionalhook=True)
    def portal_register_pages(register):
        register(path="/readings", label=("Rādījumi", "Readings"), get=show, post=submit,
                 templates=Path(__file__).parent / "templates",
                 texts={"title": ("Skaitītāja rādījums", "Meter reading")})

Each handler is called with a :class:`plugins.portal.extensions.PageRequest` after the
portal has checked the login (customers only) and, for ``post``, the CSRF token; it
returns ``request.render("my_page.html", ...)`` (a template that extends ``base.html``,
so it gets the portal's layout, navigation and language switch) or any response.
"""

from __future__ import annotations

from typing import Any

import pluggy

from gateway.hookspecs import PROJECT

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def portal_register_pages(register: Any) -> None:
    """Add customer pages to the portal with ``register(...)``, one call per page.

    ``register(path, label, get, post=None, templates=None, texts=None)``:

    * ``path``: the page's URL, e.g. ``/readings``; it must not be one of the portal's own;
    * ``label``: ``(lv, en)``, the tab in the navigation;
    * ``get`` / ``post``: ``handler(request: PageRequest) -> Response``; a POST handler
      only runs when the form's ``csrf`` field is valid;
    * ``templates``: a directory of Jinja2 templates (name them after the plugin, the
      portal's template directory comes first);
    * ``texts``: ``{key: (lv, en)}`` for ``t(key)`` in those templates.
    """
