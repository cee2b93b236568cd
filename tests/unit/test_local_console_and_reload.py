"""The ``make run`` terminal's lines, and new code taking effect at the next invocation (each part alone)."""

from __future__ import annotations

import io
import os
import sys
import textwrap
import time

import pytest

from infra.local.console import Console, ConsoleRelay, invocation_line
from infra.local.lambda_runtime import CodeVersion, EnvironmentPool


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_invocation_line_names_the_function_its_start_its_time_and_its_batch():
    batch = {"Records": [{"messageId": "a"}, {"messageId": "b"}]}
    assert invocation_line("execute_orders", False, 41.26, batch, {"batchItemFailures": [{"itemIdentifier": "b"}]}) \
        == "λ execute_orders warm 41.3 ms, 2 records, 1 failed"
    assert invocation_line("ws_message", True, 230.0, {"body": "{}"}, None) == "λ ws_message cold 230.0 ms"
    assert invocation_line("execute_orders", True, 5.0, {"Records": [{}]}, None) == \
        "λ execute_orders cold 5.0 ms, 1 record, 0 failed"  # an invocation that raised failed no single record


def test_without_a_pipe_the_console_writes_nothing():
    console = Console(None)
    assert not console.enabled
    console.line("GET /pools 200 3.0 ms")  # no error, nowhere to go


def wait_for(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_the_relay_prints_each_line_written_by_any_process():
    out = io.StringIO()
    relay = ConsoleRelay(out)
    Console(relay.write_fd).line("POST /orders 202 12.0 ms")
    Console(relay.write_fd).line("λ execute_orders warm 3.1 ms, 1 record, 0 failed")
    wait_for(lambda: out.getvalue().count("\n") == 2)
    first, second = out.getvalue().splitlines()
    assert first.endswith(" POST /orders 202 12.0 ms") and second.endswith("0 failed")


class Stuck(io.StringIO):
    """A terminal nobody reads: every write blocks."""

    def write(self, text: str) -> int:
        time.sleep(3600)
        return 0


def test_a_terminal_nobody_reads_never_blocks_a_writer_it_drops_lines_instead():
    relay = ConsoleRelay(Stuck(), backlog=10)
    console = Console(relay.write_fd)
    started = time.monotonic()
    for n in range(5000):  # far more than a pipe's 64 KiB
        console.line(f"GET /orders/{n} 200 1.0 ms")
    assert time.monotonic() - started < 5
    wait_for(lambda: relay.dropped > 4000)


def test_the_code_version_changes_with_a_file_but_is_looked_at_only_every_half_second(tmp_path):
    (tmp_path / "lib").mkdir()
    module = tmp_path / "lib" / "rules.py"
    module.write_text("X = 1\n")
    (tmp_path / "app.py").write_text("")
    clock = Clock()
    code = CodeVersion(tmp_path, every_s=0.5, clock=clock, package="lib")
    before = code.current()
    os.utime(module, ns=(1, 1))
    assert code.current() == before  # not looked at again yet
    clock.now += 0.5
    assert code.current() != before
    (tmp_path / "lib" / "new.py").write_text("")
    clock.now += 0.5
    assert str(tmp_path / "lib" / "new.py") in dict(code.current())


@pytest.fixture
def project(tmp_path):
    """An app of its own with its own package of code, so that reloading never touches this test run's modules."""
    package = "reload_probe_lib"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "answer.py").write_text("ANSWER = 'v1'\n")
    (tmp_path / "app.py").write_text(textwrap.dedent(f"""
        from chalice import Chalice

        from {package} import answer

        app = Chalice(app_name="probe")


        @app.lambda_function(name="ask")
        def ask(event, context):
            return {{"answer": answer.ANSWER, "app": "one"}}
    """))
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path, package
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
            del sys.modules[name]


def test_an_edit_is_a_deployment_the_next_invocation_runs_the_new_code_in_a_new_environment(project):
    root, package = project
    clock = Clock()
    out = io.StringIO()
    relay = ConsoleRelay(out)
    pool = EnvironmentPool(root / "app.py", code=CodeVersion(root, clock=clock, package=package),
                           console=Console(relay.write_fd), package=package)
    assert pool.invoke("ask", {}) == {"answer": "v1", "app": "one"}
    assert pool.invoke("ask", {}) == {"answer": "v1", "app": "one"}

    (root / package / "answer.py").write_text("ANSWER = 'v2'\n")
    bump = (root / package / "answer.py").stat().st_mtime_ns + 10**9
    os.utime(root / package / "answer.py", ns=(bump, bump))
    clock.now += 1
    assert pool.invoke("ask", {}) == {"answer": "v2", "app": "one"}  # the package's module, imported afresh

    (root / "app.py").write_text((root / "app.py").read_text().replace('"one"', '"two"'))
    os.utime(root / "app.py", ns=(bump + 10**9, bump + 10**9))
    clock.now += 1
    assert pool.invoke("ask", {}) == {"answer": "v2", "app": "two"}

    wait_for(lambda: out.getvalue().count("\n") == 4)
    starts = [line.split()[3] for line in out.getvalue().splitlines()]
    assert starts == ["cold", "warm", "cold", "cold"]
