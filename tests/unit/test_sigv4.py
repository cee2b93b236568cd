"""The hand-written SigV4 signer writes exactly the headers botocore's SigV4Auth writes for the same request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.sigv4 import SigV4Signer

MOMENT = datetime(2026, 11, 30, 7, 59, 58, tzinfo=UTC)


def botocore_headers(method, url, body, headers, credentials, service, region, moment):
    """What ``SigV4Auth.add_auth`` adds, at ``moment`` instead of its own clock (its steps, called in its order)."""
    request = AWSRequest(method, url, data=body, headers=dict(headers))
    auth = SigV4Auth(credentials, service, region)
    request.context["timestamp"] = moment.strftime("%Y%m%dT%H%M%SZ")
    auth._modify_request_before_signing(request)
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    auth._inject_signature_to_request(request, auth.signature(string_to_sign, request))
    return dict(request.headers)


CASES = [
    # @connections: an id percent-encoded in the path, no headers of its own
    ("execute-api", "https://abc123.execute-api.us-east-1.amazonaws.com/prod/@connections/Vcr3Yd5KoAMCK3w%3D", {}),
    ("execute-api", "http://127.0.0.1:8001/api/@connections/AQIDBAUGBwgJCg%3D%3D", {}),
    # SQS's JSON protocol
    ("sqs", "http://127.0.0.1:4566/", {"X-Amz-Target": "AmazonSQS.SendMessage",
                                        "Content-Type": "application/x-amz-json-1.0"}),
    ("sqs", "https://sqs.eu-west-1.amazonaws.com/", {"X-Amz-Target": "AmazonSQS.ReceiveMessage",
                                                     "Content-Type": "application/x-amz-json-1.0"}),
    # a default port, a query in any order, dot segments and doubled slashes, spaces to trim, unsigned headers
    ("sqs", "https://sqs.us-east-1.amazonaws.com:443/a/./b/../c//d?b=2&a=1&a=0",
     {"Content-Type": "  text/plain;   charset=utf-8 ", "User-Agent": "x", "Expect": "100-continue"}),
    ("execute-api", "http://LOCALHOST:80/", {"Authorization": "stale", "X-Amz-Date": "stale"}),
]


@pytest.mark.parametrize(("service", "url", "headers"), CASES)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////wEaDOr+session/token=="])
@pytest.mark.parametrize("body", [b"", b'{"type":"order.update","seq":2}', "é\u2603".encode()])
def test_the_same_headers_as_botocore(service, url, headers, token, body):
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    frozen = credentials.get_frozen_credentials()
    signer = SigV4Signer(service, "us-east-1", clock=lambda: MOMENT)
    ours = signer.sign("POST", url, body, headers, frozen)
    assert ours == botocore_headers("POST", url, body, headers, frozen, service, "us-east-1", MOMENT)


def test_the_signing_key_is_kept_for_its_day_and_made_again_for_the_next_or_another_secret():
    now = [MOMENT]
    signer = SigV4Signer("sqs", "us-east-1", clock=lambda: now[0])
    url, body = "http://127.0.0.1:4566/", b"{}"
    for moment, secret in [(MOMENT, "one"), (MOMENT + timedelta(seconds=1), "one"), (MOMENT + timedelta(days=1), "one"),
                           (MOMENT + timedelta(days=1), "two")]:
        now[0] = moment
        frozen = Credentials("AKID", secret).get_frozen_credentials()
        assert signer.sign("POST", url, body, {}, frozen) == botocore_headers(
            "POST", url, body, {}, frozen, "sqs", "us-east-1", moment)


@settings(max_examples=200, deadline=None)
@given(
    path=st.lists(st.text(alphabet="abc.-_~%=+ /é", max_size=6), max_size=4).map("/".join),
    query=st.lists(st.tuples(st.text(alphabet="abz%2B", min_size=1, max_size=3),
                             st.text(alphabet="xy=%20", max_size=3)), max_size=3),
    body=st.binary(max_size=64),
    header=st.text(alphabet="ab \t:;", max_size=12),
)
def test_any_path_query_body_and_header_value_signs_as_botocore_signs_it(path, query, body, header):
    url = "https://sqs.us-east-1.amazonaws.com/" + path.replace(" ", "%20") + (
        "?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    headers = {"X-Custom": header} if header.strip() else {}
    frozen = Credentials("AKID", "secret", "token").get_frozen_credentials()
    signer = SigV4Signer("sqs", "us-east-1", clock=lambda: MOMENT)
    assert signer.sign("POST", url, body, headers, frozen) == botocore_headers(
        "POST", url, body, headers, frozen, "sqs", "us-east-1", MOMENT)
