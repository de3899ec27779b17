"""The README's generated sections, kept in step with the code by ``python -m converter.readme``.

Each section sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; a test checks that
the README holds exactly what this module generates.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .errors import EXIT_CODES
from .explain import explain, markdown_table


def sections() -> dict[str, str]:
    codes = "\n".join(["| code | meaning |", "|---|---|", *(f"| {c} | {m} |" for c, m in EXIT_CODES.items())])
    return {
        "explain-dense": f"```\n{explain('dense').rstrip()}\n```",
        "explain-lstm": f"```\n{explain('lstm').rstrip()}\n```",
        "explain-gru": f"```\n{explain('gru').rstrip()}\n```",
        "explain-mha": f"```\n{explain('mha').rstrip()}\n```",
        "exit-codes": codes,
        "ops-table": markdown_table().rstrip(),
    }


def render(text: str) -> str:
    for name, body in sections().items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README has no section '{name}'")
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(render(path.read_text()))
    print(f"updated {path}")
