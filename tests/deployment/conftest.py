"""The CDK app's templates, synthesized once per test session exactly as ``make synth`` does, with no AWS
credentials in reach: what the tests read is what ``cdk deploy`` would send to CloudFormation."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from infra.local.lambda_runtime import PROJECT_DIR

SYNTH_TIMEOUT_S = 300  # the first synthesis downloads the functions' wheels from PyPI


def synthesize(stage: str) -> Path:
    out = Path(tempfile.mkdtemp(prefix=f"synth-{stage}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # no instance credentials either
    result = subprocess.run(["make", "-s", "synth", f"STAGE={stage}", f"CDK_OUT={out}"], cwd=PROJECT_DIR, env=env,
                            capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S)
    assert result.returncode == 0, f"make synth failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return out / f"{stage}.template.json"


@pytest.fixture(scope="session")
def template_path() -> Path:
    return synthesize("dev")


@pytest.fixture(scope="session")
def template(template_path: Path) -> dict:
    return json.loads(template_path.read_text())


@pytest.fixture(scope="session")
def prod_template() -> dict:
    return json.loads(synthesize("prod").read_text())
