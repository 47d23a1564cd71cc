"""The layout's rules, read from the code itself: imports only point down, providers do no I/O, and every
status or queue word comes from models/statuses.py.

Layers, from the face down: msgrelay/cli/ and api/ → tasks/ → msgrelay/ (the flow) → providers/ and models/.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from models.statuses import ChunkStatus, JobStatus, MessageStatus, PauseReason, Queue, TemplateStatus

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for top in ("providers", "models", "msgrelay", "tasks", "api") for p in (ROOT / top).rglob("*.py")
                 if "migrations" not in p.parts) + [ROOT / "beat_schedule.py"]


def module_of(path: Path) -> str:
    """The dotted module name of a source file."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def under(name: str, package: str) -> bool:
    """`name` is `package` or inside it."""
    return name == package or name.startswith(package + ".")


#: (files whose module starts with, packages they must not import)
FORBIDDEN = [
    ("providers", ("msgrelay", "tasks", "api", "beat_schedule")),
    ("models", ("msgrelay", "tasks", "api", "providers", "beat_schedule")),
    ("msgrelay", ("tasks", "api", "msgrelay.cli")),  # the flow; its own cli/ is exempted below
    ("tasks", ("api", "msgrelay.cli")),
    ("beat_schedule", ("tasks", "api", "msgrelay.cli")),
    ("api", ("msgrelay.cli",)),
]


@pytest.mark.parametrize(("layer", "banned"), FORBIDDEN)
def test_imports_only_point_down(layer, banned):
    offences = []
    for path in SOURCES:
        module = module_of(path)
        if not under(module, layer) or under(module, "msgrelay.cli"):
            continue
        offences += [f"{module} imports {name}" for name in imports(path) if any(under(name, b) for b in banned)]
    assert not offences, "\n".join(offences)


#: a provider module builds requests and parses answers: none of these may be imported there
IO_MODULES = ("requests", "httpx", "urllib.request", "http.client", "socket", "sqlalchemy", "sqlmodel", "redis",
              "models.db", "models.tables", "models.bulk", "celery")


def test_provider_modules_do_no_io():
    offences = []
    for path in SOURCES:
        module = module_of(path)
        if not under(module, "providers") or under(module, "providers.simulator") or module == "providers.http":
            continue
        offences += [f"{module} imports {name}" for name in imports(path) if any(under(name, m) for m in IO_MODULES)]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offences += [f"{module} calls open()" for node in ast.walk(tree)
                     if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"]
    assert not offences, "\n".join(offences)


WORDS = {str(v) for enum in (MessageStatus, JobStatus, ChunkStatus, TemplateStatus, PauseReason, Queue) for v in enum}
KEYWORDS = {"queue", "status", "reason", "task_default_queue", "default_queue"}


def bare_words(tree: ast.AST) -> list[tuple[int, str]]:
    """Status or queue words written as string literals where a status or queue is meant: compared with,
    passed as `queue=`/`status=`/`reason=`, a dict's "queue"/"status" value, a branch of a conditional
    expression, or a literal collection of them."""
    found = []

    def word(node: ast.AST) -> str | None:
        return node.value if isinstance(node, ast.Constant) and node.value in WORDS else None

    def members(node: ast.AST) -> list[ast.AST]:
        return list(node.elts) if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]

    for node in ast.walk(tree):
        candidates: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                candidates += members(operand)
        elif isinstance(node, ast.IfExp):
            candidates += [node.body, node.orelse]
        elif isinstance(node, ast.keyword) and node.arg in KEYWORDS:
            candidates.append(node.value)
        elif isinstance(node, ast.Dict):
            candidates += [v for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant)
                           and k.value in KEYWORDS]
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts and all(word(e) for e in node.elts):
            candidates += node.elts
        found += [(c.lineno, w) for c in candidates if (w := word(c))]
    return found


def test_no_bare_status_or_queue_words_outside_statuses():
    offences = []
    for path in SOURCES:
        module = module_of(path)
        if module == "models.statuses" or under(module, "providers.simulator"):
            continue  # the simulator speaks the providers' words, not ours
        offences += [f"{module}:{line} {w!r}" for line, w in bare_words(ast.parse(path.read_text(encoding="utf-8")))]
    assert not offences, "\n".join(offences)


def test_the_rule_finds_what_it_is_meant_to_find():
    code = ('if chunk.status == "pending": send(queue="bulk")\nSHOWN = ("queued", "failed")\nx = {"status": "done"}\n'
            'q = p.queue if p else "otp"\npause(job, reason="operator")\nHEADERS = ("mobile", "failed")')
    assert sorted(w for _, w in bare_words(ast.parse(code))) == [
        "bulk", "done", "failed", "operator", "otp", "pending", "queued"]
