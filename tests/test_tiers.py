"""The test tiers: a test that needs a missing service skips locally and fails in CI."""
import os, shutil, subprocess, sys

import pytest

from conftest import REPO_ROOT, REQUIRE_SERVICES_VARIABLE, POSTGRES_URL_VARIABLE, CHROMIUM_VARIABLE

NEEDS_SERVICES = '''
def test_needs_postgres(postgres_url):
    assert postgres_url

def test_needs_chromium(chromium_executable):
    assert chromium_executable
'''


def _run_without_services(tmp_path, require: bool) -> subprocess.CompletedProcess:
    shutil.copy(REPO_ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_needs_services.py").write_text(NEEDS_SERVICES)
    environment = {name: value for name, value in os.environ.items()
                   if name not in {REQUIRE_SERVICES_VARIABLE, POSTGRES_URL_VARIABLE}}
    environment.update(PATH=os.path.dirname(sys.executable), **{CHROMIUM_VARIABLE: str(tmp_path / "no-such-browser")})
    if require:
        environment[REQUIRE_SERVICES_VARIABLE] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-rsf", "-p", "no:cacheprovider", "-p", "no:xdist", str(tmp_path)],
                          cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)


def test_missing_services_skip_with_the_reason_on_a_laptop(tmp_path):
    result = _run_without_services(tmp_path, require=False)
    assert result.returncode == 0, result.stdout
    assert "2 skipped" in result.stdout
    assert "no PostgreSQL server" in result.stdout and "no Chromium browser" in result.stdout


def test_missing_services_fail_when_ci_requires_them(tmp_path):
    result = _run_without_services(tmp_path, require=True)
    assert result.returncode == 1, result.stdout
    assert "2 errors" in result.stdout  # pytest reports a failure inside a fixture as an error
    assert f"{REQUIRE_SERVICES_VARIABLE} is set" in result.stdout


@pytest.mark.service("postgresql")
def test_postgres_fixture_gives_each_test_its_own_empty_database(postgres_url):
    import psycopg
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        tables = connection.execute("select count(*) from information_schema.tables where table_schema='public'")
        assert tables.fetchone()[0] == 0
        connection.execute("create table journal (id serial primary key, note text)")
        connection.execute("insert into journal (note) values ('written')")
        assert connection.execute("select note from journal").fetchone()[0] == "written"
