"""The console's modules joined into the one file the page loads (``static/console.js``).

The console is written as small ES modules (``static/*.js``), but the page loads a single
file: a cold page then asks the gateway for one script, not ten, and runs it without a
module graph to resolve (see docs/architecture.md, "Web console"). This is that join, in
plain Python, no Node: each module becomes a function whose result is an object of its
exports, called in dependency order, and ``import { a, b } from "./x.js"`` becomes
``const { a, b } = x``. It understands only what the console's modules use (named imports
of sibling modules on one line; ``export`` before ``function``, ``async function``,
``class`` and ``const``) and refuses anything else, so a module it cannot join is an error
here, not a broken page.

``python -m orra_gateway.ui.bundle`` rewrites the committed ``static/console.js``;
``--check`` exits 1 when it is not the build of the modules (tests/gateway/test_ui.py checks
the same).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Final

__all__ = ["BUNDLE", "ENTRY", "BundleError", "build", "main"]

_STATIC: Final = Path(__file__).resolve().parent / "static"
BUNDLE: Final = "console.js"
"""The built file's name in ``static/``."""
ENTRY: Final = "app.js"
"""The module that starts the console; the others are the modules it imports, transitively."""

_IMPORT = re.compile(r'^import \{([^}]*)\} from "\./([a-z]+)\.js";\s*$')
_EXPORT = re.compile(r"^export (?:async function|function|class|const) ([A-Za-z_$][\w$]*)")
_NAME = re.compile(r"^[A-Za-z_$][\w$]*$")
_HEADER: Final = (
    "// The Orra console: the modules of orra_gateway/ui/static joined by\n"
    "// orra_gateway/ui/bundle.py. Do not edit: edit the modules and run\n"
    "// `python -m orra_gateway.ui.bundle`.\n"
)


class BundleError(Exception):
    """A module uses something the join does not understand, or the imports form a cycle."""


def _binding(name: str) -> str:
    return f"__{name}"


def _module(name: str, text: str) -> tuple[list[str], list[str], list[str]]:
    """A module's imports, its body (imports and exports rewritten) and its exports."""
    deps: list[str] = []
    body: list[str] = []
    exports: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{name}.js:{number}"
        if line.startswith("import"):
            found = _IMPORT.match(line)
            if found is None:
                raise BundleError(f'{where}: only `import {{ ... }} from "./x.js";` is joined')
            names = [n.strip() for n in found[1].split(",") if n.strip()]
            if not all(_NAME.match(n) for n in names):
                raise BundleError(f"{where}: import plain names (no `as`, no default)")
            deps.append(found[2])
            body.append(f"const {{ {', '.join(names)} }} = {_binding(found[2])};")
        elif line.startswith("export"):
            found = _EXPORT.match(line)
            if found is None:
                raise BundleError(f"{where}: only `export` before a function, class or const")
            exports.append(found[1])
            body.append(line.removeprefix("export "))
        else:
            body.append(line)
    return deps, body, exports


def build(static: Path = _STATIC) -> str:
    """The text of ``console.js`` built from the modules in ``static``.

    Raises:
        BundleError: a module cannot be joined, or the imports form a cycle.
    """
    parsed: dict[str, tuple[list[str], list[str], list[str]]] = {}
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise BundleError(f"the modules import each other in a cycle: {cycle}")
        path = static / f"{name}.js"
        if not path.is_file():
            raise BundleError(f"no module {path.name} in {static}")
        parsed[name] = _module(name, path.read_text(encoding="utf-8"))
        visiting.append(name)
        for dep in parsed[name][0]:
            visit(dep)
        visiting.pop()
        order.append(name)

    visit(ENTRY.removesuffix(".js"))
    out = [_HEADER]
    for name in order:
        _, body, exports = parsed[name]
        out.append(f"// --- {name}.js\nconst {_binding(name)} = (() => {{\n")
        out.append("\n".join(body).rstrip("\n") + "\n")
        out.append(f"return {{ {', '.join(exports)} }};\n}})();\n" if exports else "})();\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Write ``static/console.js``, or with ``--check`` say whether it is up to date."""
    args = sys.argv[1:] if argv is None else argv
    target = _STATIC / BUNDLE
    try:
        text = build()
    except BundleError as exc:
        sys.stderr.write(f"cannot build the console bundle: {exc}\n")
        return 2
    if args == ["--check"]:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current != text:
            sys.stderr.write(
                f"{target} is not the build of the modules: "
                "run `python -m orra_gateway.ui.bundle`\n"
            )
            return 1
        return 0
    if args:
        sys.stderr.write("usage: python -m orra_gateway.ui.bundle [--check]\n")
        return 2
    target.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
