"""The layout docs/design.md describes: no import cycle between the package's modules (imports
inside functions included), and only `run.py` names the files of a run folder."""

import ast
import os
import re

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_instagan")


def modules():
    """`{dotted name: path}` of every module of the package (a package is its `__init__`)."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                relative = os.path.relpath(os.path.join(folder, name), os.path.dirname(PACKAGE))
                dotted = relative[: -len(".py")].replace(os.sep, ".").removesuffix(".__init__")
                found[dotted] = os.path.join(folder, name)
    return found


def imports(path, known):
    """The package modules `path` imports anywhere in it (`from pkg import module` names the module,
    `from pkg import name` the package's `__init__`)."""
    targets = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module in known:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                targets.add(submodule if submodule in known else node.module)
    return targets


def test_no_import_cycle_in_the_package():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    assert graph["keras_instagan.model"] >= {"keras_instagan.run", "keras_instagan.networks"}  # found

    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            name, trail = stack.pop()
            for target in graph[name]:
                if target == start:
                    return trail + [start]
                if target not in seen:
                    seen.add(target)
                    stack.append((target, trail + [target]))
        return None

    cycles = [cycle for cycle in map(cycle_from, graph) if cycle]
    assert not cycles, " → ".join(cycles[0])


def test_only_the_run_directory_names_the_run_folder_files():
    files = r"config\.json|log\.csv|model\.weights\.h5|epoch\.json|[GD]_[AB]\.keras"
    for name, path in modules().items():
        if name == "keras_instagan.run":
            continue
        tree = ast.parse(open(path).read())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                # messages may name a file; a path built from a literal name may not
                parent_is_message = " " in node.value
                assert parent_is_message or not re.search(files, node.value), (path, node.value)
