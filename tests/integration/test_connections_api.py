"""The engine's ``@connections`` client against a server that records what it receives and answers as told."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.credentials
import pytest

from chalicelib.adapters.outages import DEPENDENCY_DOWN
from chalicelib.adapters.signed_http import Unreachable
from chalicelib.adapters.websocket import ConnectionsApi, PushFailed, PushUnavailable
from infra.local.processes import free_port


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answers: list[int] = []
    seen: list[tuple[str, dict, bytes]] = []
    ports: list[int] = []  # the client's port of each request: one per connection
    hang_up = False  # close the connection after answering, without saying so first

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.seen.append((self.path, dict(self.headers), body))
        Recorder.ports.append(self.client_address[1])
        status = Recorder.answers.pop(0) if Recorder.answers else 200
        payload = b'{"message": "Forbidden"}' if status >= 400 else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = Recorder.hang_up

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    Recorder.answers, Recorder.seen, Recorder.ports, Recorder.hang_up = [], [], [], False
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


def test_frames_share_a_kept_alive_connection(server):
    client = api(server)
    assert all(client.post(f"c{n}=", b"x") for n in range(5))
    assert len(Recorder.seen) == 5 and len(set(Recorder.ports)) == 1


def test_a_connection_the_server_closed_is_replaced_without_losing_the_frame(server):
    Recorder.hang_up = True
    client = api(server)
    assert client.post("c=", b"first") and client.post("c=", b"second")
    assert [body for _, _, body in Recorder.seen] == [b"first", b"second"] and len(set(Recorder.ports)) == 2


def test_an_endpoint_nobody_listens_on_is_unreachable_which_is_an_outage():
    with pytest.raises(Unreachable):
        api(f"http://127.0.0.1:{free_port()}/api").post("c=", b"x")
    assert issubclass(Unreachable, DEPENDENCY_DOWN)


class RawServer:
    """Answers each request on a connection with the next of ``answers`` (raw bytes), then closes if told."""

    def __init__(self, answers: list[bytes], close_after: bool = False):
        import socket

        self.answers, self.close_after, self.requests = answers, close_after, []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.answers:
            conn, _ = self.sock.accept()
            with conn:
                while self.answers:
                    request = conn.recv(65536)
                    if not request:
                        break
                    self.requests.append(request)
                    conn.sendall(self.answers.pop(0))
                    if self.close_after:
                        break


@pytest.mark.parametrize("answer,closes", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Amzn-Query-Error: A;Sender\r\n\r\nhello", False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\nTrailer: x\r\n\r\n",
     False),
    (b"HTTP/1.0 200 OK\r\n\r\nhello", True),  # no length: the body ends with the connection
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello", True),
], ids=["length", "chunked", "until-close", "connection-close"])
def test_every_framing_of_an_answer_is_read_whole(answer, closes):
    from chalicelib.adapters.signed_http import SignedHttp

    server = RawServer([answer, answer], close_after=closes)
    client = SignedHttp("sqs", "eu-west-1", botocore.credentials.Credentials("AKID", "secret"))
    for _ in range(2):  # the second on the kept connection, or on a new one after a close-delimited body
        reply = client.post(f"http://127.0.0.1:{server.port}/q?x=1", b"{}", {"X-Amz-Target": "AmazonSQS.Send"})
        assert (reply.status, reply.data) == (200, b"hello")
    assert server.requests[0].startswith(b"POST /q?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nContent-Length: 2\r\n\r\n{}" in server.requests[0]
    assert b"X-Amz-Target: AmazonSQS.Send" in server.requests[0]


def test_an_answer_cut_short_is_unreachable_not_a_wrong_answer():
    from chalicelib.adapters.signed_http import SignedHttp

    server = RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"], close_after=True)
    with pytest.raises(Unreachable, match="IncompleteRead"):
        SignedHttp("sqs", "eu-west-1", botocore.credentials.Credentials("AKID", "secret")).post(
            f"http://127.0.0.1:{server.port}/", b"{}")
