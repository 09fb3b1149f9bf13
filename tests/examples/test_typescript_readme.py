"""The README's TypeScript service is the one ``make install`` compiles.

examples/typescript/src/readme-payment.ts holds it (after its comment header), so a change
of the SDK's API that breaks the README's example fails the build.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_typescript_example_is_the_compiled_one() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```ts\n(.*?)```", readme, re.DOTALL)
    assert match, "README.md has no TypeScript example"
    source = (REPO / "examples/typescript/src/readme-payment.ts").read_text(encoding="utf-8")
    code = "\n".join(line for line in source.splitlines() if not line.startswith("// "))
    assert code.lstrip("\n") + "\n" == match.group(1)
