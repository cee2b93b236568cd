from chalicelib.bootstrap import build_engine
from chalicelib.settings import Settings
from infra.local.processes import free_port


def test_health_names_each_dependency_that_is_down(servers, aws_env, sqs):
    from infra.local.aws import ensure_orders_queues

    ensure_orders_queues(sqs, "orders", worker_timeout_s=60)
    healthy = build_engine(Settings.from_env(aws_env))
    assert healthy.health() == {"postgres": "ok", "redis": "ok", "sqs": "ok"}

    nothing_there = f"redis://127.0.0.1:{free_port()}/0"
    broken = build_engine(Settings.from_env({**aws_env, "REDIS_URL": nothing_there, "ORDERS_QUEUE_NAME": "missing"}))
    checks = broken.health()
    assert checks["postgres"] == "ok"
    assert checks["redis"].startswith("down") and checks["sqs"].startswith("down")
    healthy.close()
    broken.close()
