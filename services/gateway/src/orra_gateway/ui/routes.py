"""Routes of the web console: its assets and the page every ``/ui`` path answers.

The files are small and few, so they are read once, at import, and served from memory
with an ETag (a browser revalidates them with ``If-None-Match`` and gets a 304): a page
load asks for a dozen modules at once, and a thread-pool file read each would be most of
its time on a busy machine.
"""

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, HeaderParameter

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

_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


def _load() -> dict[str, tuple[bytes, str, str]]:
    """Every file of the console: its bytes, media type and ETag."""
    files: dict[str, tuple[bytes, str, str]] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and path.suffix in _TYPES:
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            files[path.name] = (body, _TYPES[path.suffix], etag)
    return files


_FILES: Final = _load()


def _send(name: str, if_none_match: str | None) -> Response[bytes]:
    body, media_type, etag = _FILES[name]
    headers = {**_HEADERS, "ETag": etag}
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(b"", status_code=304, headers=headers, media_type=media_type)
    return Response(body, headers=headers, media_type=media_type)


_IF_NONE_MATCH = HeaderParameter(name="If-None-Match", required=False, max_length=1024)


@get(
    ["/ui", "/ui/{rest:path}"],
    include_in_schema=False,
    opt={PUBLIC: True},
    sync_to_thread=False,
)
def console_page(
    if_none_match: Annotated[str | None, _IF_NONE_MATCH] = None,
) -> Response[bytes]:
    """The console's page; the app in it routes ``/ui/...`` paths in the browser."""
    return _send("index.html", if_none_match)


@get("/ui/assets/{name:str}", include_in_schema=False, opt={PUBLIC: True}, sync_to_thread=False)
def console_asset(
    name: FromPath[str],
    if_none_match: Annotated[str | None, _IF_NONE_MATCH] = None,
) -> Response[bytes]:
    """One of the console's modules or its style sheet."""
    if name not in _FILES or name == "index.html":
        raise NotFoundException(f"the console has no file {name!r}")
    return _send(name, if_none_match)


UI_ROUTES: Final["list[ControllerRouterHandler]"] = [console_page, console_asset]
"""The console's routes, registered by :func:`orra_gateway.app.create_app`."""
