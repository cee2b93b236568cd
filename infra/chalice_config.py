"""``.chalice/config.json`` read as Chalice reads it, for the local cloud and the CDK stack."""

from __future__ import annotations

import json
from pathlib import Path

from chalice.config import Config

PROJECT_DIR = Path(__file__).resolve().parents[1]


def chalice_config(stage: str = "local", project_dir: Path = PROJECT_DIR) -> Config:
    config_file = project_dir / ".chalice" / "config.json"
    from_disk = json.loads(config_file.read_text()) if config_file.exists() else {}
    # Not Config.create(), which would take config_from_disk for a user-provided parameter and ignore it.
    return Config(chalice_stage=stage, user_provided_params={"project_dir": str(project_dir)},
                  config_from_disk=from_disk)


def function_timeout(function_name: str, stage: str = "local") -> int:
    """The function's timeout in seconds from .chalice/config.json (Chalice's default is 60)."""
    return chalice_config(stage).scope(stage, function_name).lambda_timeout or 60
