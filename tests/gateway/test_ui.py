"""The console's routes (:mod:`orra_gateway.ui`) over real HTTP: its page and assets.

They hold no data, so they answer without a key, and only the console's own files: the
JSON API keeps asking for one. The browser tests are in tests/e2e/test_console.py.
"""

from __future__ import annotations

import re

import httpx

from orra_gateway.ui.routes import CONTENT_SECURITY_POLICY, STATIC_DIR
from tests.gateway.conftest import ServerThread


async def test_every_console_path_answers_the_page_without_a_key(server: ServerThread) -> None:
    page = (STATIC_DIR / "index.html").read_text()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as anon:
        for path in ("/ui", "/ui/", "/ui/orchestrations", "/ui/orchestrations/o_1", "/ui/services"):
            resp = await anon.get(path)
            assert resp.status_code == 200, (path, resp.text)
            assert resp.text == page
            assert resp.headers["content-type"].startswith("text/html")
            # no inline script or style, no other origin: data can never run as code
            assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert resp.headers["x-content-type-options"] == "nosniff"
        # the API itself still wants a key
        assert (await anon.get("/orchestrations")).status_code == 401


async def test_the_assets_are_the_package_s_files(server: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as anon:
        for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
            resp = await anon.get(f"/ui/assets/{name}")
            assert resp.status_code == 200
            assert kind in resp.headers["content-type"]
            assert resp.content == (STATIC_DIR / name).read_bytes()
            assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        # unchanged: the browser's copy is still good
        etag = resp.headers["etag"]
        again = await anon.get("/ui/assets/style.css", headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
        assert (await anon.get("/ui/assets/nope.js")).status_code == 404
        escaped = await anon.get("/ui/assets/..%2F__init__.py")
        assert escaped.status_code == 404
        assert b"orra_gateway" not in escaped.content


def test_the_console_has_no_cdn_and_never_parses_data_as_html() -> None:
    sources = {p.name: p.read_text() for p in STATIC_DIR.iterdir() if p.suffix in (".js", ".html")}
    assert {"app.js", "index.html"} <= set(sources)
    for name, text in sources.items():
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert banned not in text, (name, banned)
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), name
        assert "https://" not in text.replace("https://your-app.com", ""), name


def test_the_page_preloads_every_module() -> None:
    """Every module is asked for at once (``modulepreload``), not import after import."""
    page = (STATIC_DIR / "index.html").read_text()
    modules = {p.name for p in STATIC_DIR.glob("*.js")} - {"app.js"}
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/ui/assets/([a-z]+\.js)">', page))
    assert preloaded == modules
