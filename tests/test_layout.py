"""The README's layout tree and the package on disk agree (README "Layout")."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Folders the tree shows collapsed, their modules named in prose on the folder's line.
COLLAPSED = {"fapkit/masking/_fast", "fapkit/data/synth"}


def _tree() -> set[str]:
    """Every path the README's layout block names under ``fapkit/``, from its indentation."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    stack: list[str] = []
    paths = set()
    for line in block.splitlines():
        m = re.match(r"^( *)(\S+)", line)
        if not m or not (m.group(2).endswith(".py") or m.group(2).endswith("/")):
            continue
        depth = len(m.group(1)) // 2
        if depth == 0 and m.group(2) != "fapkit/":
            stack = []
            continue
        stack = stack[:depth] + [m.group(2).rstrip("/")]
        paths.add("/".join(stack))
    return paths


def _disk() -> set[str]:
    pkg = ROOT / "fapkit"
    out = {"fapkit"}
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if "__pycache__" in rel.parts or path.name == "__init__.py":
            continue
        folder = str(rel.parent)
        if any(folder == c or folder.startswith(c + "/") for c in COLLAPSED):
            continue
        out.add(str(rel))
    for path in pkg.rglob("*"):
        if path.is_dir() and path.name != "__pycache__" and (path / "__init__.py").exists():
            out.add(str(path.relative_to(ROOT)))
    return out


def test_the_readme_tree_lists_every_module_and_package_and_nothing_else():
    tree, disk = _tree(), _disk()
    assert "fapkit/training/loop.py" in tree  # the parser sees nested entries
    assert disk - tree == set(), f"modules missing from README's Layout: {sorted(disk - tree)}"
    assert tree - disk == set(), f"README's Layout names modules that do not exist: {sorted(tree - disk)}"


def test_the_layout_rule_names_every_subpackage():
    rule = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```", 1)[0]
    subpackages = {p.name for p in (ROOT / "fapkit").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    for name in subpackages:
        assert f"`{name}/`" in rule, f"the layout rule does not say what goes in {name}/"
