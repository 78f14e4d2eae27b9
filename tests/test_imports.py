"""No import cycle in jhash/: the graph of every import statement (at module level or inside functions)
between jhash's modules has no cycle. ``from jhash.pkg import sub`` counts as importing the submodule
``sub``; a package's ``__init__`` importing its own submodules is an edge like any other."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "jhash"


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {name: set() for name in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [s for s in subs if s in mods]
                if len(targets) < len(subs):  # names defined in node.module itself
                    targets.append(node.module)
            else:
                continue
            graph[name] |= {t for t in targets if t in mods and t != name}
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_jhash_has_no_import_cycle():
    graph = import_graph()
    assert {"jhash.train.trainer", "jhash.evaluate", "jhash.run"} <= set(graph)
    assert "jhash.evaluate" in graph["jhash.train.trainer"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
