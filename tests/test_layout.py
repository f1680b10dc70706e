"""The README's "Layout" list is the package's true shape: every module listed once, in import order."""

import ast
import re

from helpers import ROOT


def _readme_modules():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("keras_regnet/\n", 1)[1].split("apps/", 1)[0]
    return [re.match(r"\s+(\w+)\.py\s", line).group(1) for line in block.splitlines() if line.strip()]


def _imported_package_modules(path):
    """keras_regnet modules a file imports anywhere (lazy imports inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "keras_regnet":
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_regnet."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("keras_regnet.")}
    return names


def test_every_module_is_listed_once():
    listed = _readme_modules()
    present = sorted(p.stem for p in (ROOT / "keras_regnet").glob("*.py") if p.stem != "__init__")
    assert sorted(listed) == present and len(set(listed)) == len(listed)


def test_modules_import_only_modules_listed_above_them():
    order = _readme_modules()
    for position, module in enumerate(order):
        below = _imported_package_modules(ROOT / "keras_regnet" / f"{module}.py") & set(order[position + 1 :])
        assert not below, f"{module} imports {sorted(below)}, listed below it in README's Layout"
