"""``python -m infra.cdk``: synthesizes one stage's stack (``-c stage=dev``, the default, or ``prod``).

Offline: nothing here calls AWS, so no credentials are needed; ``chalice package`` downloads the functions'
wheels from PyPI. One stage per run, because `chalice package` imports app.py once per process.
"""

from __future__ import annotations

import os
import shutil
import sys

import aws_cdk as cdk

from ..chalice_config import PROJECT_DIR
from .stack import LAMBDA_RUNTIME, OrderEngineStack
from .stages import STAGES

LAMBDA_PYTHON = tuple(int(part) for part in LAMBDA_RUNTIME.removeprefix("python").split("."))


def main() -> int:
    if sys.version_info[:2] != LAMBDA_PYTHON:
        print(f"error: the functions run on {LAMBDA_RUNTIME}, and `chalice package` bundles wheels for the Python that "
              f"runs it ({sys.version_info[0]}.{sys.version_info[1]}): run make synth/deploy with a Python "
              f"{LAMBDA_PYTHON[0]}.{LAMBDA_PYTHON[1]} environment (rm -rf .venv; make PYTHON=python3.11 synth)",
              file=sys.stderr)
        return 2
    app = cdk.App()
    stage = app.node.try_get_context("stage") or "dev"
    if stage not in STAGES:
        print(f"error: unknown stage {stage!r}; choose one of {', '.join(STAGES)}", file=sys.stderr)
        return 2
    shutil.rmtree(PROJECT_DIR / "chalice.out", ignore_errors=True)  # the construct's packages of earlier runs
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    OrderEngineStack(app, STAGES[stage], env=cdk.Environment(account=account, region=region))
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
