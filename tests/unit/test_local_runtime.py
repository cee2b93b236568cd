"""The local cloud reads .chalice/config.json as Chalice's deployer does, and chooses its AWS emulator."""

import pytest

from infra.local.__main__ import LocalSettings, gateway_envs, worker_envs
from infra.local.lambda_runtime import chalice_config, function_timeout
from infra.local.servers import LocalStackUnavailable, python_313


def test_the_stage_config_gives_each_function_its_timeout_and_the_stage_its_variables():
    config = chalice_config("local")
    assert config.app_name == "order-engine"
    assert config.scope("local", "api_handler").lambda_timeout == 30
    assert function_timeout("execute_orders") == 60
    assert config.environment_variables["STAGE"] == "local"
    assert chalice_config("prod").environment_variables["DEX_FAILURE_RATE"] == "0"


def test_without_python_313_localstack_says_why_it_cannot_run(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCALSTACK_PYTHON", str(tmp_path / "no-such-python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(LocalStackUnavailable, match="needs Python 3.13"):
        python_313()


def test_an_unknown_emulator_is_refused(monkeypatch):
    monkeypatch.setenv("AWS_EMULATOR", "azurite")
    with pytest.raises(ValueError, match="moto, localstack"):
        LocalSettings.from_env()


def test_the_gateway_layout_is_split_unless_asked_and_an_unknown_one_is_refused(monkeypatch):
    monkeypatch.delenv("GATEWAY_LAYOUT", raising=False)
    assert LocalSettings.from_env().gateway_layout == "split"
    monkeypatch.setenv("GATEWAY_LAYOUT", "Shared")
    assert LocalSettings.from_env().gateway_layout == "shared"
    monkeypatch.setenv("GATEWAY_LAYOUT", "mixed")
    with pytest.raises(ValueError, match="GATEWAY_LAYOUT must be one of split, shared"):
        LocalSettings.from_env()


def test_the_worker_processes_share_out_the_event_sources_concurrency_and_the_pool():
    envs = worker_envs({"WORKER_CONCURRENCY": "32", "WORKER_DB_POOL_SIZE": "60", "OTHER": "kept"}, 2)
    assert [e["WORKER_CONCURRENCY"] for e in envs] == ["16", "16"]
    assert sum(int(e["WORKER_INITIAL_CONCURRENCY"]) for e in envs) == 5  # Lambda's start, in all
    assert sum(float(e["WORKER_SCALE_UP_PER_S"]) for e in envs) == 5.0  # and its growth
    assert [e["DB_POOL_SIZE"] for e in envs] == ["30", "30"]
    assert [e["WORKER_SCHEDULES"] for e in envs] == ["1", "0"] and all(e["OTHER"] == "kept" for e in envs)
    single, = worker_envs({"WORKER_CONCURRENCY": "1"}, 2)  # one invocation at a time means one process
    assert single["WORKER_CONCURRENCY"] == "1" and single["WORKER_SCHEDULES"] == "1"


def test_the_gateway_processes_split_between_the_two_apis_and_only_websocket_ones_pass_requests_on():
    from infra.local.gateway.__main__ import GatewaySettings

    def layout(processes, shape="split"):
        envs = gateway_envs({"OTHER": "kept"}, processes, [7001, 7002, 7003, 7004, 7005], shape)
        assert all(e["OTHER"] == "kept" for e in envs)
        settings = [GatewaySettings.from_env(e) for e in envs]
        return [("rest" if s.ws_port is None else "ws" if s.http_port is None else "both", s.management_port,
                 s.peers) for s in settings]

    assert layout(1) == [("both", None, {})]  # alone: both APIs, nothing to pass on
    assert layout(2) == [("ws", None, {}), ("rest", None, {})]  # every connection in one process: no crossing
    assert layout(3) == [("ws", None, {}), ("rest", None, {}), ("rest", None, {})]
    assert layout(4) == [("ws", 7001, {1: ("127.0.0.1", 7002)}), ("ws", 7002, {0: ("127.0.0.1", 7001)}),
                         ("rest", None, {}), ("rest", None, {})]
    assert [role for role, _, _ in layout(5)] == ["ws", "ws", "rest", "rest", "rest"]
    assert layout(2, "shared") == [("both", 7001, {1: ("127.0.0.1", 7002)}), ("both", 7002, {0: ("127.0.0.1", 7001)})]
    assert layout(1, "shared") == [("both", None, {})]
    with pytest.raises(ValueError, match="GATEWAY_ROLE must be rest, websocket or empty"):
        GatewaySettings.from_env({"GATEWAY_ROLE": "ws"})


def test_a_process_that_dies_is_restarted_at_once_and_one_that_keeps_dying_later_and_later(monkeypatch, tmp_path):
    from infra.local.__main__ import LocalCloud

    monkeypatch.setenv("LOCAL_QUIET", "1")
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path))
    cloud = LocalCloud(LocalSettings.from_env())
    assert cloud.console is None
    delays = [cloud.restart_delay("postgres", now) for now in (100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 106.0)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert cloud.restart_delay("postgres", 200.0) == 0.0  # up for a while: a new death is restarted at once
    assert cloud.restart_delay("valkey", 200.5) == 0.0  # each process counts its own deaths


def test_the_moto_patches_apply_only_to_the_release_they_were_written_for():
    from infra.local import moto_version

    assert moto_version.problem() is None  # the locked release
    message = moto_version.problem(lambda package: "5.3.0")
    assert message and "5.2.5" in message and "5.3.0" in message and "make install" in message
    assert "\n" not in message


def test_a_connection_id_names_the_gateway_process_that_accepted_it_and_looks_like_api_gateways():
    import re

    from infra.local.gateway.connections import new_connection_id, owner_of

    for owner in (0, 1, 7, 255):
        ids = {new_connection_id(owner) for _ in range(50)}
        assert len(ids) == 50 and all(re.fullmatch(r"[A-Za-z0-9_-]{15}=", i) for i in ids)
        assert {owner_of(i) for i in ids} == {owner}
    assert owner_of("never-existed=") is None and owner_of("") is None and owner_of("%%%") is None


def test_each_function_process_reads_its_settings_once_from_what_the_supervisor_gave_it():
    from infra.local.gateway.__main__ import GatewaySettings
    from infra.local.worker import WorkerSettings

    rest_only = GatewaySettings.from_env({"HTTP_PORT": "9000", "GATEWAY_ROLE": "rest", "GATEWAY_CONCURRENCY": "4"})
    assert (rest_only.http_port, rest_only.ws_port, rest_only.concurrency) == (9000, None, 4)
    assert rest_only.bind_host == "127.0.0.1" and rest_only.idle_timeout_s == 600
    first = GatewaySettings.from_env({"WS_PORT": "9001", "WS_IDLE_TIMEOUT_SECONDS": "2"})
    assert first.ws_port == 9001 and first.idle_timeout_s == 2.0
    assert (first.index, first.peers, first.management_port) == (0, {}, None)  # alone: nothing to pass on
    second = GatewaySettings.from_env({"GATEWAY_INDEX": "1", "GATEWAY_MANAGEMENT_PORTS": "7001,7002,7003"})
    assert second.management_port == 7002
    assert second.peers == {0: ("127.0.0.1", 7001), 2: ("127.0.0.1", 7003)}

    shares = worker_envs({"WORKER_CONCURRENCY": "32", "LOCAL_SCHEDULE_SECONDS": "2"}, 2)
    first_worker, second_worker = (WorkerSettings.from_env(env) for env in shares)
    assert first_worker.concurrency + second_worker.concurrency == 32
    assert first_worker.runs_schedules and not second_worker.runs_schedules
    assert first_worker.schedule_every_s == 2.0
    assert WorkerSettings.from_env({}).schedule_every_s is None  # each schedule's own rate
