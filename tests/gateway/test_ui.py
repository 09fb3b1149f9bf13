"""The console's routes (:mod:`orra_gateway.ui`) over real HTTP: its page and assets.

They hold no data, so they answer without a key, and only the console's own files: the
JSON API keeps asking for one. The browser tests are in tests/e2e/test_console.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from orra_gateway.ui.bundle import BUNDLE, BundleError, build, main
from orra_gateway.ui.routes import CONTENT_SECURITY_POLICY, STATIC_DIR
from tests.gateway.conftest import ServerThread


async def test_every_console_path_answers_the_page_without_a_key(server: ServerThread) -> None:
    page = (STATIC_DIR / "index.html").read_text()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as anon:
        for path in ("/ui", "/ui/", "/ui/orchestrations", "/ui/orchestrations/o_1", "/ui/services"):
            resp = await anon.get(path)
            assert resp.status_code == 200, (path, resp.text)
            # the file, with the assets' versions in their URLs
            assert re.sub(r"\?v=[0-9a-f]{16}", "", resp.text) == page
            assert resp.headers["content-type"].startswith("text/html")
            # no inline script or style, no other origin: data can never run as code
            assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert resp.headers["x-content-type-options"] == "nosniff"
        # the API itself still wants a key
        assert (await anon.get("/orchestrations")).status_code == 401


async def test_the_assets_are_the_package_s_files_cached_by_version(
    server: ServerThread,
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as anon:
        page = (await anon.get("/ui")).text
        for name, kind in (("console.js", "javascript"), ("style.css", "text/css")):
            # the page names each asset with the hash of its content
            (url,) = re.findall(rf'"(/ui/assets/{re.escape(name)}\?v=[0-9a-f]{{16}})"', page)
            resp = await anon.get(url)
            assert resp.status_code == 200
            assert kind in resp.headers["content-type"]
            assert resp.content == (STATIC_DIR / name).read_bytes()
            assert resp.headers["content-encoding"] == "gzip"  # httpx asked for it
            assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            # that URL always answers these bytes: a browser keeps them
            assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
            # without the version (or an old one), it asks again each time
            for stale in (f"/ui/assets/{name}", f"/ui/assets/{name}?v=0123456789abcdef"):
                assert (await anon.get(stale)).headers["cache-control"] == "no-cache"
            plain = await anon.get(url, headers={"Accept-Encoding": "identity"})
            assert "content-encoding" not in plain.headers
            assert plain.content == resp.content
        # unchanged: the browser's copy is still good
        etag = resp.headers["etag"]
        again = await anon.get("/ui/assets/style.css", headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
        # the page too, with its own ETag
        first = await anon.get("/ui/orchestrations")
        again = await anon.get("/ui", headers={"If-None-Match": first.headers["etag"]})
        assert (again.status_code, first.headers["cache-control"]) == (304, "no-cache")
        # only the bundle is served: not its sources, nor anything else of the package
        for name in ("app.js", "dom.js", "nope.js", "index.html"):
            assert (await anon.get(f"/ui/assets/{name}")).status_code == 404, name
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


def test_the_page_loads_one_script_the_build_of_the_modules() -> None:
    """``console.js`` is what ``python -m orra_gateway.ui.bundle`` makes of the modules
    now: edit a module and forget to rebuild, and this fails."""
    page = (STATIC_DIR / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", page) == [
        '<script type="module" src="/ui/assets/console.js">'
    ]
    assert (STATIC_DIR / BUNDLE).read_text() == build(), (
        "run `python -m orra_gateway.ui.bundle` to rebuild static/console.js"
    )
    assert main(["--check"]) == 0
    # every module is in it, once
    built = build()
    for module in STATIC_DIR.glob("*.js"):
        if module.name != BUNDLE:
            assert built.count(f"// --- {module.name}\n") == 1, module.name


def test_the_bundle_refuses_what_it_cannot_join(tmp_path: Path) -> None:
    for text, says in (
        ('import app from "./app.js";\n', "only `import { ... }"),
        ('import { a as b } from "./dom.js";\n', "plain names"),
        ("export default 1;\n", "only `export` before"),
        ('import { x } from "./dom.js";\n', "cycle"),
    ):
        (tmp_path / "app.js").write_text(text)
        (tmp_path / "dom.js").write_text('import { y } from "./app.js";\nexport const x = 1;\n')
        with pytest.raises(BundleError, match=re.escape(says)):
            build(tmp_path)
