"""One docstring style in the package (README "Docstrings"): prose with reST inline markup.

Single backticks name a Python object (`fapkit.run`), double backticks are literal code or values
(``ratio=0.8``); no Sphinx roles and no Google/numpydoc sections.
"""
import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fapkit"
ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc):`")
SECTION = re.compile(r"^\s*(Args|Arguments|Attributes|Returns|Raises|Yields|Parameters|Examples?):?\s*$|^\s*-{3,}\s*$", re.M)
SINGLE = re.compile(r"(?<![`\w])`([^`\n]+)`(?![`\w])")
NAME = re.compile(r"~?\.*[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def _docstrings():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                if doc:
                    yield f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'name', 'module')}", doc


def test_docstrings_use_one_style():
    problems = []
    for where, doc in _docstrings():
        if ROLE.search(doc):
            problems.append(f"{where}: a Sphinx role ({ROLE.search(doc).group(0)}...); write `name`")
        if SECTION.search(doc):
            problems.append(f"{where}: a Google/numpydoc section ({SECTION.search(doc).group(0).strip()}); write prose")
        for match in SINGLE.finditer(doc):
            if not NAME.fullmatch(match.group(1)):
                problems.append(f"{where}: `{match.group(1)}` is code, not a name; write ``{match.group(1)}``")
    assert not problems, "\n".join(problems)
