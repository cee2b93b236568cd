"""The AsyncAPI document describes the WebSocket as the code runs it: every action, every frame, every reference."""

from __future__ import annotations

import json
import re
from pathlib import Path

from chalicelib.api.asyncapi import document
from chalicelib.api.websocket import ACTIONS

ROOT = Path(__file__).resolve().parents[2]


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(doc, ref: str):
    node = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_action_the_socket_takes_and_every_frame_it_sends_is_documented():
    doc = document()
    assert doc["asyncapi"] == "3.0.0"
    sent = {m["payload"]["properties"]["action"]["const"] for m in doc["components"]["messages"].values()
            if "const" in m["payload"]["properties"].get("action", {})}  # an error frame names any action
    assert sent == set(ACTIONS)
    documented_frames = {m["payload"]["properties"]["type"]["const"] for m in doc["components"]["messages"].values()
                         if "type" in m["payload"]["properties"]}
    code = "\n".join(p.read_text() for p in (ROOT / "chalicelib").rglob("*.py"))
    frames_in_code = set(re.findall(r'"type": "([a-z]+(?:\.[a-z]+)?)"', code)) - {"object", "string", "array",
                                                                                    "integer", "http", "null",
                                                                                    "number"}  # JSON Schema's
    assert frames_in_code <= documented_frames, frames_in_code - documented_frames


def test_every_reference_resolves_and_the_document_is_json():
    doc = json.loads(json.dumps(document()))
    for ref in set(_refs(doc)):
        assert _resolve(doc, ref) is not None, ref
    for operation in doc["operations"].values():
        assert operation["action"] in ("send", "receive")
