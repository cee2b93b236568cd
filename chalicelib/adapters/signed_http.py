"""Signed calls on the engine's two hottest paths to AWS: one ``@connections`` post per WebSocket frame and one SQS
``SendMessage`` per order.

boto3's clients spent about 1 ms of CPU per call on our 2-core machine, most of it in botocore's event hooks,
parameter validation and endpoint resolution. Signing the same request with botocore's SigV4 signer and sending it
over a pooled urllib3 connection costs a third to a half of that, with the same wire format and answers.
Throttling and server errors are retried with backoff, as botocore's standard retry mode does.

botocore and urllib3 are imported on first use: they are about 180 ms of a cold start, and an invocation that
neither pushes nor places an order never needs them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

RETRIED = frozenset({429, 500, 502, 503, 504})  # throttling and transient failures


class SignedHttp:
    def __init__(
        self,
        service: str,
        region: str,
        credentials: Any,
        pool_size: int = 64,
        read_timeout_s: float = 5,
        attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ):
        import urllib3

        self._service = service
        self._region = region
        self._credentials = credentials  # botocore credentials: refreshed by botocore when they expire
        self._http = urllib3.PoolManager(maxsize=pool_size, retries=False,
                                         timeout=urllib3.Timeout(connect=2, read=read_timeout_s))
        self.attempts = attempts
        self._sleep = sleep

    def post(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
        """The answer (a urllib3 response) to a SigV4-signed POST; throttling and server errors are tried again
        with backoff, ``attempts`` times in all, and the last answer is returned whatever it is."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        attempt = 1
        while True:
            request = AWSRequest("POST", url, data=body, headers=headers or {})
            SigV4Auth(self._credentials.get_frozen_credentials(), self._service, self._region).add_auth(request)
            response = self._http.request("POST", url, body=body, headers=dict(request.headers))
            if response.status not in RETRIED or attempt == self.attempts:
                return response
            self._sleep(0.05 * 2**attempt)
            attempt += 1
