"""The web console: a static app of ES modules served under ``/ui``.

The console is plain JavaScript modules and CSS shipped inside this package
(``orra_gateway/ui/static``): no CDN, no Node. The page loads them as one committed file,
``console.js``, joined by :mod:`orra_gateway.ui.bundle`. ``/ui/assets/...`` serves it and
the style sheet; ``/ui`` and every path below it (``/ui/orchestrations/<id>``) answer the
same ``index.html``, so deep links work, and the app routes in the browser. The pages are
public (they hold no data); the app calls the JSON API with the API key the user enters,
kept in the browser's session storage. See docs/architecture.md, "Web console".
"""

from orra_gateway.ui.routes import UI_ROUTES

__all__ = ["UI_ROUTES"]
