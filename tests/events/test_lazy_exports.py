"""``orra_events`` loads its exports on first use (PEP 562), with the same names as before."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import orra_events


def _loaded_after(code: str) -> set[str]:
    report = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_topology_and_constants_do_not_import_nats_or_the_bus() -> None:
    loaded = _loaded_after(
        "import orra_events\n"
        "from orra_events import PREVIOUS_SECRET_GRACE_S, Topology, check_name\n"
        "assert Topology(namespace='t').subject('task.completed', 'o_1')"
    )
    assert "orra_events.topology" in loaded
    assert not {m for m in loaded if m == "nats" or m.startswith("nats.")}
    assert "orra_events.bus" not in loaded


def test_the_bus_still_loads_nats_when_used() -> None:
    loaded = _loaded_after("from orra_events import Bus")
    assert {"orra_events.bus", "nats"} <= loaded


@pytest.mark.parametrize("name", orra_events.__all__)
def test_every_export_is_the_defining_modules_object(name: str) -> None:
    module = importlib.import_module(orra_events._MODULE_OF[name])
    assert getattr(orra_events, name) is getattr(module, name)
    assert name in dir(orra_events)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = orra_events.no_such_name  # type: ignore[attr-defined]
    assert set(orra_events._MODULE_OF) == set(orra_events.__all__)


def test_stream_configs_still_build_nats_stream_configs() -> None:
    from nats.js.api import StreamConfig

    configs = orra_events.Topology(namespace="lazy").stream_configs()
    assert configs
    assert all(isinstance(c, StreamConfig) for c in configs)
