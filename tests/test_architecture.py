"""The layout's promises, checked on the source: where locks are taken, who writes the points tables, and that
the import contracts in pyproject.toml hold and do catch a wrong import. No database."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("loyalty", "partners", "rewards", "communications", "analytics", "blueprints", "integrations")
POINTS_MODELS = {"PointsAccount", "PointsEntry", "PointsLot", "PointsAllocation"}
WRITE_METHODS = {"create", "bulk_create", "update", "bulk_update", "get_or_create", "update_or_create", "delete"}
POINTS_TABLE_WRITE = re.compile(
    r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM|COPY)\s+loyalty_points(account|entry|lot|allocation)\b", re.IGNORECASE
)
POINTS_TABLE = re.compile(r"^loyalty_points(account|entry|lot|allocation)$")
# Helpers that write the table they are handed (COPY into it, take ids from its sequence).
TABLE_WRITERS = {"copy_in", "allocate_ids"}
LOCK_SQL = re.compile(r"FOR\s+(UPDATE|SHARE|NO\s+KEY\s+UPDATE)\b|pg_(try_)?advisory|lock_timeout", re.IGNORECASE)
LEDGER_WRITERS = {"loyalty/services/ledger.py", "loyalty/services/ledger_bulk.py"}


def _modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), filename=str(path))


def _strings(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _chain_root(node):
    """`PointsEntry` for `PointsEntry.objects.filter(...).update`."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return node.id if isinstance(node, ast.Name) else None


def _call_name(node) -> str:
    return getattr(node.func, "attr", getattr(node.func, "id", ""))


def _points_writes(tree):
    for lineno, text in _strings(tree):
        if POINTS_TABLE_WRITE.search(text):
            yield lineno, text.strip()[:60]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in TABLE_WRITERS:
            for arg in node.args:
                if isinstance(arg, ast.Constant) and POINTS_TABLE.match(str(arg.value)):
                    yield node.lineno, ast.unparse(node)[:60]
    for node in ast.walk(tree):
        call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        is_write = call and node.func.attr in WRITE_METHODS
        if is_write and _chain_root(node.func.value) in POINTS_MODELS:
            yield node.lineno, ast.unparse(node)[:60]


def _lock_takers(tree):
    for lineno, text in _strings(tree):
        if LOCK_SQL.search(text):
            yield lineno, text[:60]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "select_for_update":
            yield node.lineno, "select_for_update()"


def test_only_the_two_ledger_modules_write_the_points_tables():
    writers = {path: list(found) for path, tree in _modules() if (found := list(_points_writes(tree)))}

    assert set(writers) == LEDGER_WRITERS, {path: w for path, w in writers.items() if path not in LEDGER_WRITERS}


def test_the_check_for_points_writers_sees_orm_and_sql_writes():
    orm = ast.parse("PointsLot.objects.filter(remaining__gt=0).update(remaining=0)")
    sql = ast.parse('cursor.execute("UPDATE loyalty_pointsaccount SET available = 0")')
    copy = ast.parse('copy_in(cursor, "loyalty_pointslot", "account_id, points", rows)')
    read = ast.parse("PointsEntry.objects.filter(kind='earn').count()")
    link = ast.parse('list_link("loyalty_pointsentry", account__id__exact=1)')

    assert len(list(_points_writes(orm))) == 1
    assert len(list(_points_writes(sql))) == 1
    assert len(list(_points_writes(copy))) == 1
    assert list(_points_writes(read)) == []
    assert list(_points_writes(link)) == []


def test_every_row_and_advisory_lock_is_taken_in_a_lock_objects_module():
    takers = {path: list(found) for path, tree in _modules() if (found := list(_lock_takers(tree)))}

    assert {path for path in takers if not path.endswith("/lock_objects.py")} == set(), takers


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "wrong_import", "broken"),
    [
        ("partners/services.py", "import loyalty.services.ledger", "partners imports nothing of ours"),
        ("loyalty/services/ledger.py", "import rewards.services", "The program core (loyalty) imports only partners"),
        ("loyalty/services/claims.py", "import loyalty.admin.claims", "Domain code never imports"),
        ("loyalty/engine/rules.py", "import loyalty.services.earning", "The program core's layers"),
        ("loyalty/services/ledger.py", "import loyalty.services.earning", "No import circles anywhere"),
        ("loyalty/services/claims.py", "import integrations.webhooks", "The program core (loyalty) imports only"),
        ("loyalty/services/claims.py", "import loyalty.api.claims", "Domain code never imports"),
    ],
)
def test_the_import_contracts_fail_on_a_wrong_import(tmp_path, module, wrong_import, broken):
    """A copy of the code with one deliberately wrong import: lint-imports exits 1 and names the contract."""
    for name in (*APPS, "bench"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # noqa\n")

    result = _lint_imports(tmp_path)

    assert result.returncode == 1
    assert broken in result.stdout
