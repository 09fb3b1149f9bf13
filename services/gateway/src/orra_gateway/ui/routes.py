"""Routes of the web console: its assets and the page every ``/ui`` path answers.

Three files are served: ``index.html``, ``style.css`` and ``console.js`` (the modules of
``static/`` joined by :mod:`orra_gateway.ui.bundle`). They are read once, at import, and
served from memory, gzip-compressed for a browser that takes it. The page names each asset
with its content hash (``/ui/assets/console.js?v=<hash>``), and an asset asked for with its
current hash may be kept a year (``immutable``): a browser that has the console loads it
without asking the gateway anything but the page, and a new version has a new URL. The page
itself, and an asset asked for without the hash, is revalidated each time (``ETag``,
``If-None-Match`` → 304).
"""

import gzip
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, HeaderParameter, QueryParameter

from orra_gateway.auth import PUBLIC

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

__all__ = ["CONTENT_SECURITY_POLICY", "SERVED", "STATIC_DIR", "UI_ROUTES"]

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
    "Vary": "Accept-Encoding",
}

_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}

SERVED: Final = ("index.html", "style.css", "console.js")
"""The files of ``static/`` the gateway serves (the modules are the bundle's sources)."""

_FOREVER: Final = "public, max-age=31536000, immutable"


class _File:
    """A served file: its bytes (plain and gzipped), media type, version and ETag."""

    def __init__(self, name: str, body: bytes) -> None:
        self.body = body
        self.gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        self.media_type = _TYPES[Path(name).suffix]
        self.version = hashlib.sha256(body).hexdigest()[:16]
        # weak: the plain and the gzipped bytes are the same file
        self.etag = f'W/"{self.version}"'


def _load() -> dict[str, _File]:
    """The served files; the page's asset URLs carry the assets' versions."""
    files = {name: _File(name, (STATIC_DIR / name).read_bytes()) for name in SERVED[1:]}
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for name, file in files.items():
        url = f'"/ui/assets/{name}"'
        if url not in page:
            raise RuntimeError(f"index.html does not load {name}")
        page = page.replace(url, f'"/ui/assets/{name}?v={file.version}"')
    files["index.html"] = _File("index.html", page.encode())
    return files


_FILES: Final = _load()


def _send(
    name: str, if_none_match: str | None, accept_encoding: str | None, *, forever: bool = False
) -> Response[bytes]:
    file = _FILES[name]
    headers = {**_HEADERS, "ETag": file.etag, "Cache-Control": _FOREVER if forever else "no-cache"}
    if if_none_match is not None and file.etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(b"", status_code=304, headers=headers, media_type=file.media_type)
    codings = {c.split(";")[0].strip().lower() for c in (accept_encoding or "").split(",")}
    if "gzip" in codings:
        headers["Content-Encoding"] = "gzip"
        return Response(file.gzipped, headers=headers, media_type=file.media_type)
    return Response(file.body, headers=headers, media_type=file.media_type)


_IF_NONE_MATCH = HeaderParameter(name="If-None-Match", required=False, max_length=1024)
_ACCEPT_ENCODING = HeaderParameter(name="Accept-Encoding", required=False, max_length=1024)


@get(
    ["/ui", "/ui/{rest:path}"],
    include_in_schema=False,
    opt={PUBLIC: True},
    sync_to_thread=False,
)
def console_page(
    if_none_match: Annotated[str | None, _IF_NONE_MATCH] = None,
    accept_encoding: Annotated[str | None, _ACCEPT_ENCODING] = None,
) -> Response[bytes]:
    """The console's page; the app in it routes ``/ui/...`` paths in the browser."""
    return _send("index.html", if_none_match, accept_encoding)


@get("/ui/assets/{name:str}", include_in_schema=False, opt={PUBLIC: True}, sync_to_thread=False)
def console_asset(
    name: FromPath[str],
    if_none_match: Annotated[str | None, _IF_NONE_MATCH] = None,
    accept_encoding: Annotated[str | None, _ACCEPT_ENCODING] = None,
    v: Annotated[str | None, QueryParameter(max_length=64)] = None,
) -> Response[bytes]:
    """The console's script or its style sheet; ``v``: the version the page names."""
    if name not in _FILES or name == "index.html":
        raise NotFoundException(f"the console has no file {name!r}")
    return _send(name, if_none_match, accept_encoding, forever=v == _FILES[name].version)


UI_ROUTES: Final["list[ControllerRouterHandler]"] = [console_page, console_asset]
"""The console's routes, registered by :func:`orra_gateway.app.create_app`."""
