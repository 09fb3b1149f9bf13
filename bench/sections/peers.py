"""Peers: Celery, DBOS and Prefect on the same 2+2 workflow, on this machine, in this run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.peers_runner import PEERS, run_peer
from bench.stats import Agg

if TYPE_CHECKING:
    from bench.config import Config
    from bench.sections import Result

__all__ = ["run_peers"]

_FIGURES = ("p50_ms", "p99_ms", "throughput_per_s", "load_p50_ms")


def run_peers(cfg: Config, log: Any = print) -> Result:
    """Run every configured peer ``cfg.peer_runs`` times; aggregate each figure."""
    out: Result = {"status": "ok", "notes": [], "peers": {}}
    for peer in cfg.peers:
        if peer not in PEERS:
            out["notes"].append(f"unknown peer {peer!r}")
            continue
        results: list[dict[str, Any]] = []
        errors: list[str] = []
        durability = None
        for i in range(cfg.peer_runs):
            log(f"  {peer} run {i + 1}/{cfg.peer_runs}")
            run = run_peer(
                peer,
                latency_n=cfg.peer_latency_n
                if peer != "prefect"
                else max(10, cfg.peer_latency_n // 2),
                throughput_s=cfg.peer_throughput_s,
                concurrency=cfg.peer_concurrency,
            )
            if run.result is None:
                errors.append(run.error or "no result")
                if "not found" in (run.error or "") or "cannot install" in (run.error or ""):
                    break
                continue
            durability = run.result.get("durability")
            results.append(run.result)
        entry: dict[str, Any] = {"runs": results, "errors": errors, "durability": durability}
        for key in _FIGURES:
            agg = Agg.of(r.get(key) for r in results)
            entry[key] = agg.as_dict() if agg else None
        out["peers"][peer] = entry
        if errors:
            out["notes"].extend(f"{peer}: {e}" for e in errors)
            out["status"] = "partial"
    return out
