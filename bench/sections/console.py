"""Console: time to a rendered list and a rendered detail page, in chromium, with history.

A fresh nats-server gets a synthetic log of N completed orchestrations of the seed plan
(:mod:`bench.synth`, 11 events each, consumers positioned as if the services had consumed
it); a gateway starts on it and builds its list index. Then Debian's ``chromium``, driven
by Playwright, opens the console cold (a new browser context each time: no cache, no
session) and reads the ``orra:list`` / ``orra:detail`` performance marks the console sets
once a page has drawn its data (``rendered`` in the console's ``dom.js``): milliseconds from
the start of navigation to a rendered page, script loading and API calls included.

The detail page is opened for the newest, a middle and the oldest orchestration of the log
(the oldest is the one a naive log scan finds last). The JSON calls the two pages make
(``GET /orchestrations?limit=50`` and ``GET /orchestrations/{id}``) are timed alone over
HTTP in the same run, so the browser's share shows.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import TYPE_CHECKING, Any

import httpx

from bench.procs import Stack, gateway_process
from bench.stats import Agg
from bench.synth import position_consumers, write_log
from orra_events import Bus, Topology

if TYPE_CHECKING:
    from bench.config import Config
    from bench.sections import Result

__all__ = ["TARGET_MS", "run_console"]

TARGET_MS = 300.0
"""Issue 18: the list and the detail page open in under 300 ms with 100,000 orchestrations."""

INDEX_CAUGHT_UP = "list index caught up with the event log"
API_KEY = "orra_bench-console-key-0123456789abcdef"


async def _prepare(url: str, namespace: str, n: int) -> dict[str, Any]:
    """Write the log; return its size and the ids of its newest, middle and oldest runs."""
    bus = await Bus.connect(url, Topology(namespace=namespace), name="orra-bench-console")
    try:
        await bus.ensure_streams()
        report = await write_log(bus, n)
        await position_consumers(bus)
        stream = bus.topology.events_stream
        info = await bus.js.stream_info(stream)
        last = info.state.last_seq
        ids: dict[str, str] = {}
        # each orchestration's 11 events are written together: its first is action.submitted
        for name, seq in (("oldest", 1), ("middle", 1 + 11 * (n // 2)), ("newest", last - 10)):
            msg = await bus.js.get_msg(stream, seq=seq)
            ids[name] = bus.topology.strip(msg.subject).rsplit(".", 1)[1]
        return {
            "events": info.state.messages,
            "bytes": info.state.bytes,
            "write_s": report.seconds,
            "ids": ids,
        }
    finally:
        await bus.close()


def _api_ms(base: str, path: str, runs: int) -> dict[str, Any] | None:
    times: list[float] = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        for _ in range(runs):
            t0 = time.perf_counter()
            resp = client.get(path, timeout=30)
            times.append((time.perf_counter() - t0) * 1000)
            resp.raise_for_status()
    return Agg.dict_of(times)


def _page_ms(browser: Any, base: str, path: str, mark: str, runs: int) -> dict[str, Any] | None:
    """Cold loads of ``path``: ms from navigation start to the page's ``mark``."""
    times: list[float] = []
    for _ in range(runs):
        context = browser.new_context()
        try:
            context.add_init_script(f"sessionStorage.setItem('orra.apiKey', {API_KEY!r});")
            page = context.new_page()
            page.goto(base + path, wait_until="commit")
            # a selector, not wait_for_function: the console's CSP forbids eval
            page.wait_for_selector(f"main[data-loaded={mark.split(':')[1]}]", timeout=30_000)
            times.append(
                float(page.evaluate(f"performance.getEntriesByName({mark!r})[0].startTime"))
            )
        finally:
            context.close()
    return Agg.dict_of(times)


def run_console(cfg: Config) -> Result:
    """Rendered list and detail pages in chromium against a gateway with a large log."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return {"status": "skipped", "notes": ["chromium is not installed (make chromium)"]}
    from playwright.sync_api import sync_playwright

    n = cfg.console_orchestrations
    runs = cfg.console_runs
    out: Result = {"status": "ok", "notes": [], "orchestrations": n, "runs": runs}
    with Stack() as stack:
        t0 = time.perf_counter()
        out["log"] = asyncio.run(_prepare(stack.url, stack.namespace, n))
        out["log"]["prepare_s"] = time.perf_counter() - t0
        ids = out["log"]["ids"]
        gateway = gateway_process()
        gateway.env["ORRA_GATEWAY_BOOTSTRAP_KEY"] = API_KEY
        gateway.ready_timeout_s = 600.0
        stack.start(gateway)
        caught_up = gateway.wait_event(INDEX_CAUGHT_UP, 600.0)
        out["index_s"] = caught_up
        base = f"http://127.0.0.1:{gateway.env['ORRA_GATEWAY_PORT']}"
        out["api_ms"] = {
            "list": _api_ms(base, "/orchestrations?limit=50", runs),
            **{
                f"detail_{which}": _api_ms(base, f"/orchestrations/{oid}", runs)
                for which, oid in ids.items()
            },
        }
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                _page_ms(browser, base, "/ui/orchestrations", "orra:list", 1)  # warm the server
                pages = {"list": _page_ms(browser, base, "/ui/orchestrations", "orra:list", runs)}
                for which, oid in ids.items():
                    pages[f"detail_{which}"] = _page_ms(
                        browser, base, f"/ui/orchestrations/{oid}", "orra:detail", runs
                    )
            finally:
                browser.close()
        out["page_ms"] = pages
    worst = max(float(p["median"]) for p in pages.values() if p)
    out["target_ms"] = TARGET_MS
    out["met"] = worst < TARGET_MS
    return out
