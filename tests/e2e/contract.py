"""Checking real responses against the OpenAPI document the running API serves."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator


class Contract:
    def __init__(self, document: dict[str, Any]):
        self.document = document
        self.checked: set[tuple[str, str]] = set()

    def operations(self) -> set[tuple[str, str]]:
        return {(path, method) for path, operations in self.document["paths"].items() for method in operations}

    def check(self, path: str, method: str, status: int, content_type: str, body: Any) -> None:
        """Fails unless the document lists this status for the operation and the body matches its schema."""
        responses = self.document["paths"][path][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {path} answered {status}, not in {sorted(responses)}"
        media = content_type.split(";")[0].strip()
        content = responses[str(status)]["content"]
        assert media in content, f"{method.upper()} {path} {status} answered {media}, not one of {list(content)}"
        schema = {**content[media]["schema"], "components": self.document["components"]}
        errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
        assert not errors, f"{method.upper()} {path} {status}: {errors[0].message} at {list(errors[0].path)}"
        self.checked.add((path, method))
