"""The package's `test` extra holds everything this suite imports (issue 22 item 4):
`pip install "./bindings/python[test]"` then `pytest bindings/python/tests` must collect."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

HERE = Path(__file__).parent
PYPROJECT = HERE.parent / "pyproject.toml"


def imported_top_level_modules() -> set[str]:
    mods: set[str] = set()
    for f in HERE.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                mods.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.add(node.module.split(".")[0])
    return mods


def test_every_third_party_import_of_the_suite_is_in_the_test_extra() -> None:
    with PYPROJECT.open("rb") as f:
        project = tomllib.load(f)["project"]
    declared = {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower().replace("_", "-")
                for d in project["optional-dependencies"]["test"] + project["dependencies"]}
    local = {p.stem for p in HERE.glob("*.py")} | {"quicklane", "__future__"}
    dists = importlib.metadata.packages_distributions()
    missing = {}
    for mod in sorted(imported_top_level_modules() - local - set(sys.stdlib_module_names)):
        owners = {d.lower().replace("_", "-") for d in dists.get(mod, [mod])}
        if not owners & declared:
            missing[mod] = sorted(owners)
    assert not missing, f"imported by the tests but not in the `test` extra of {PYPROJECT.name}: {missing}"
