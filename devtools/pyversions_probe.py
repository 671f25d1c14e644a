"""Run by each supported interpreter (``python3.X -I -S -B devtools/pyversions_probe.py``).

Stdlib only, and no site-packages (``-S``): it proves the product code compiles under that
interpreter's grammar and imports as far as the standard library goes. It writes no ``.pyc``
(``compile()`` in memory, ``-B`` for the imports). Arguments: the repository root and a JSON
list of third-party top-level module names (the pinned requirements' modules): a module that
stops at one of those is reported as "needs ...", not as a failure.

Prints one JSON object: ``{"version", "compiled", "imported", "needs", "failures"}``.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from pathlib import Path

#: The product: what the Function App and the pip-installed package run.
PRODUCT = ("shared", "keyward", "functions", "function_app.py")


def product_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for name in PRODUCT:
        path = root / name
        if path.is_dir():
            files.extend(sorted(path.rglob("*.py")))
        elif path.exists():
            files.append(path)
    return files


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def probe(root: Path, third_party: set[str]) -> dict[str, object]:
    files = product_files(root)
    failures: list[str] = []
    for path in files:
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except SyntaxError as error:
            failures.append(f"compile {path.relative_to(root)}: {error}")
    imported: list[str] = []
    needs: dict[str, list[str]] = {}
    sys.path.insert(0, str(root))
    for path in files:
        name = module_name(root, path)
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            top = (error.name or "").split(".")[0]
            if top in third_party:
                needs.setdefault(top, []).append(name)
            else:
                failures.append(f"import {name}: {error!r}")
        except Exception:  # report every other failure, whatever it is
            failures.append(f"import {name}: {traceback.format_exc(limit=3)}")
        else:
            imported.append(name)
    return {
        "version": "{}.{}.{}".format(*sys.version_info[:3]),
        "compiled": len(files),
        "imported": imported,
        "needs": needs,
        "failures": failures,
    }


def main(argv: list[str]) -> int:
    root, third_party = Path(argv[1]).resolve(), set(json.loads(argv[2]))
    result = probe(root, third_party)
    print(json.dumps(result))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
