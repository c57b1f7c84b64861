"""The package's layout keeps its promises (read from the source, not run).

- Private names stay in their module: no module imports an underscore-prefixed name
  from another module of the package (private submodules, such as ``_engine``, may
  be imported: each exports on purpose what the rest uses).
- One owner for what ``reg_lambda`` means: only the strength policies compare it with
  the names of learned strengths (or test whether it is a string).
"""

import ast
import importlib.util
from pathlib import Path

import sk_adareg

PACKAGE = Path(sk_adareg.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
STRENGTH_OWNER = PACKAGE / "_strength" / "_policies.py"


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(path, node):
    """The module an ``ImportFrom`` names, absolute."""
    if not node.level:
        return node.module
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _absolute(path, node)
            if not (source or "").startswith("sk_adareg"):
                continue
            for alias in node.names:
                private = alias.name.startswith("_")
                if private and importlib.util.find_spec(f"{source}.{alias.name}") is None:
                    offenders.append(f"{path.relative_to(PACKAGE)}: {source}.{alias.name}")
    assert not offenders, offenders


def _tests_reg_lambda_names(tree):
    """Lines comparing a value with "auto"/"evidence"/"loo", or asking whether reg_lambda
    is a str."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            strings = [o.value for o in operands if isinstance(o, ast.Constant)]
            strings += [e.value for o in operands if isinstance(o, ast.Tuple | ast.Set | ast.List)
                        for e in o.elts if isinstance(e, ast.Constant)]
            if {"auto", "evidence", "loo"} & set(strings):
                lines.append(node.lineno)
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance"
                and "reg_lambda" in ast.unparse(node.args[0])
                and ast.unparse(node.args[1]) == "str"):
            lines.append(node.lineno)
    return lines


def test_only_the_strength_policies_interpret_reg_lambda():
    found = {path.relative_to(PACKAGE).as_posix(): lines for path in MODULES
             if (lines := _tests_reg_lambda_names(ast.parse(path.read_text())))}
    assert set(found) <= {STRENGTH_OWNER.relative_to(PACKAGE).as_posix()}, found
    assert found  # the check sees the owner's own test


def test_the_check_finds_what_it_looks_for():
    tree = ast.parse("if x == 'auto': pass\nif isinstance(self.reg_lambda, str): pass\n"
                     "if y in ('loo', 'z'): pass\nif 'evidence' != z: pass\n")
    assert _tests_reg_lambda_names(tree) == [1, 2, 3, 4]
