"""The engine's ``@connections`` client against a server that records what it receives and answers as told."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.credentials
import pytest

from chalicelib.adapters.websocket import ConnectionsApi, PushFailed, PushUnavailable


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answers: list[int] = []
    seen: list[tuple[str, dict, bytes]] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.seen.append((self.path, dict(self.headers), body))
        status = Recorder.answers.pop(0) if Recorder.answers else 200
        payload = b'{"message": "Forbidden"}' if status >= 400 else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    Recorder.answers, Recorder.seen = [], []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api"
    httpd.shutdown()


def api(endpoint, sleeps=None):
    credentials = botocore.credentials.Credentials("AKIDEXAMPLE", "secret", "session-token")
    return ConnectionsApi(endpoint, "eu-west-1", credentials, sleep=(sleeps if sleeps is not None else []).append)


def test_a_frame_is_posted_sigv4_signed_to_the_percent_encoded_connection(server):
    assert api(server).post("Vcr3Yd5KoAMCK3w=", b'{"seq": 1}') is True
    (path, headers, body), = Recorder.seen
    assert path == "/api/@connections/Vcr3Yd5KoAMCK3w%3D"
    assert body == b'{"seq": 1}'
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "session-token"


def test_410_means_the_connection_is_gone(server):
    Recorder.answers = [410]
    assert api(server).post("gone=", b"x") is False


def test_throttling_and_server_errors_are_retried_with_backoff_then_reported_as_unavailable(server):
    sleeps = []
    Recorder.answers = [429, 503]
    assert api(server, sleeps).post("c=", b"x") is True
    assert sleeps == [0.1, 0.2] and len(Recorder.seen) == 3
    Recorder.answers = [500, 500, 500]
    with pytest.raises(PushUnavailable):
        api(server, []).post("c=", b"x")


def test_a_refusal_is_reported_at_once(server):
    Recorder.answers = [403]
    with pytest.raises(PushFailed, match="403"):
        api(server).post("c=", b"x")
    assert len(Recorder.seen) == 1


def test_on_aws_the_endpoint_is_the_apis_own():
    assert ConnectionsApi.for_api("abc123", "api", "eu-west-1")._endpoint == (
        "https://abc123.execute-api.eu-west-1.amazonaws.com/api")
