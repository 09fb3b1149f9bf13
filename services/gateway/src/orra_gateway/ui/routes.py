"""Routes of the web console: its assets and the page every ``/ui`` path answers."""

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from litestar import Response, get
from litestar.static_files import create_static_files_router

from orra_gateway.auth import PUBLIC

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "UI_ROUTES"]

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
"""Where the console's files are, inside the installed package."""

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Only the console's own scripts and styles run: no inline script, no other origin."""

_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def _secure(response: "Response[Any]") -> "Response[Any]":
    for name, value in _HEADERS.items():
        response.headers[name] = value
    return response


def _index() -> bytes:
    return (STATIC_DIR / "index.html").read_bytes()


@get(
    ["/ui", "/ui/{rest:path}"],
    media_type="text/html; charset=utf-8",
    include_in_schema=False,
    opt={PUBLIC: True},
    sync_to_thread=False,
)
def console_page() -> Response[bytes]:
    """The console's page; the app in it routes ``/ui/...`` paths in the browser."""
    return Response(_index(), headers=_HEADERS)


UI_ROUTES: Final["list[ControllerRouterHandler]"] = [
    console_page,
    create_static_files_router(
        path="/ui/assets",
        directories=[STATIC_DIR],
        opt={PUBLIC: True},
        include_in_schema=False,
        after_request=_secure,
        name="console_assets",
    ),
]
"""The console's routes, registered by :func:`orra_gateway.app.create_app`."""
