"""The bridge's configuration file: the desktop agents' ``mcpServers`` map, checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orra_mcp.config import load_config, parse_config
from orra_mcp.errors import ConfigError
from orra_mcp.runner import run_bridge

ENV = {"GITHUB_TOKEN": "ghp_secret"}


def test_stdio_and_http_servers_with_variables_from_the_environment() -> None:
    config = parse_config(
        {
            "project": "shop",
            "mcpServers": {
                "github": {
                    "url": "https://api.githubcopilot.com/mcp/",
                    "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"},
                },
                "files": {
                    "command": "npx",
                    "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"],
                    "env": {"NOTE": "costs $${PRICE}"},
                    "tools": ["read_text_file"],
                    "prefix": "fs",
                    "timeoutS": 20,
                },
            },
        },
        environ=ENV,
    )
    github, files = config.servers
    assert config.project == "shop"
    assert (github.transport, github.prefix) == ("http", "github")
    assert github.headers == {"Authorization": "Bearer ghp_secret"}
    assert (files.transport, files.prefix, files.command) == ("stdio", "fs", "npx")
    assert files.env == {"NOTE": "costs ${PRICE}"}
    assert files.tools == frozenset({"read_text_file"})
    assert files.timeout_s == 20.0
    assert "ghp_secret" not in github.describe()


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ({"a": {"command": "x", "url": "http://y"}}, "mcpServers.a needs exactly one of"),
        ({"a": {}}, "mcpServers.a needs exactly one of"),
        ({"a": {"url": "ftp://y"}}, "mcpServers.a.url must be an http:// or https:// URL"),
        ({"a": {"command": "x", "colour": 1}}, "mcpServers.a: unknown key 'colour'"),
        ({"a": {"command": "x", "args": "-v"}}, "mcpServers.a.args must be a list of strings"),
        ({"a b": {"command": "x"}}, "'a b' cannot prefix service names"),
        ({"a": {"url": "http://y", "headers": {"K": "${NOPE}"}}}, "${NOPE} is used but"),
        ({"a": {"command": "x", "timeoutS": 0}}, "mcpServers.a.timeoutS must be a positive"),
        (
            {"a": {"command": "x"}, "b": {"command": "y", "prefix": "a"}},
            "have the same prefix 'a'",
        ),
    ],
)
def test_a_wrong_value_is_refused_naming_the_key(servers: object, message: str) -> None:
    with pytest.raises(ConfigError, match=r"mcp\.yaml") as info:
        parse_config({"mcpServers": servers}, source="mcp.yaml", environ={})
    assert message in str(info.value)


def test_yaml_json_and_toml_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("mcpServers:\n  t:\n    command: tool\n")
    (tmp_path / "a.json").write_text(json.dumps({"mcpServers": {"t": {"command": "tool"}}}))
    (tmp_path / "a.toml").write_text('[mcpServers.t]\ncommand = "tool"\n')
    for name in ("a.yaml", "a.json", "a.toml"):
        assert load_config(tmp_path / name).servers[0].command == "tool"
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match=r"bad\.json: not valid json"):
        load_config(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_the_bridge_refuses_to_start_on_a_bad_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mcp.yaml"
    config.write_text("mcpServers:\n  files:\n    command: npx\n    url: http://x\n")
    assert run_bridge(str(config)) == 2
    assert "mcpServers.files needs exactly one of 'command' (stdio) or 'url' (HTTP)" in (
        capsys.readouterr().err
    )
