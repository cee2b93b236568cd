"""The local cloud reads .chalice/config.json as Chalice's deployer does."""

from infra.local.lambda_runtime import chalice_config, function_timeout


def test_the_stage_config_gives_each_function_its_timeout_and_the_stage_its_variables():
    config = chalice_config("local")
    assert config.app_name == "order-engine"
    assert config.scope("local", "api_handler").lambda_timeout == 30
    assert function_timeout("execute_orders") == 60
    assert config.environment_variables["STAGE"] == "local"
    assert chalice_config("prod").environment_variables["DEX_FAILURE_RATE"] == "0"
