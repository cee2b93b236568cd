"""moto's server, with fixes to its SQS found under load: no request's cost grows with the square of the backlog, a
message sent while another is deleted is no longer lost, a receive no longer fails while another message is deleted,
a message sent wakes one waiting long poll instead of all of them, and what moto works out the same way for every
request (which backend serves a host, a class's method names) is remembered. A long poll returns a delayed message as
soon as its timer ends, as SQS does, instead of up to a second later.

moto 5.2 recomputes every queue attribute (walking all messages three times) for each message it considers
returning, to read the retention period; a receive therefore costs O(backlog²) and a burst of 1,000 orders spent
more time in moto than in the engine. The retention period is read straight from the queue instead: the same
value, without the walk. A send reads every attribute too, and no longer counts the backlog to do so; a delete
finds its message by its receipt handle instead of asking every message; the walks that remain read the clock once
instead of twice per message. It is served by waitress, which keeps connections alive (see ``serve``), and SQS's JSON
protocol reaches moto's ``SQSResponse`` without Flask around it (``sqs_json_first``); everything else is moto's own.
"""

from __future__ import annotations

import functools
import logging
import os
import string
import threading
import weakref
from collections.abc import Callable
from typing import Any

from .ledger import SQS, Ledger
from .moto_version import problem

if (_refused := problem()) is not None:  # before a single patch is applied
    raise SystemExit(f"error: {_refused}")

import moto.core.responses as core_responses
import moto.core.utils as core_utils
import moto.sqs.models as sqs_models
from moto.core.request import Request as MotoRequest
from moto.core.utils import normalize_request, unix_time, unix_time_millis
from moto.moto_api import recorder
from moto.moto_api._internal import mock_random
from moto.moto_api._internal.moto_random import MotoRandom
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Message, Queue, SQSBackend
from moto.sqs.responses import SQSResponse
from werkzeug.wrappers import Response


def _is_message_valid_based_on_retention_period(self: SQSBackend, queue_name: str, message: Message) -> bool:
    retention_period = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    assert message.sent_timestamp is not None  # stamped when it was sent
    return retention_period + message.sent_timestamp / 1000 > unix_time()


# Each patch replaces a method of moto's classes, which is what mypy's method-assign refuses; they are meant.
SQSBackend.is_message_valid_based_on_retention_period = _is_message_valid_based_on_retention_period  # type: ignore[method-assign]


# moto drew random strings one character per call: a receipt handle (185 characters, one per message received) and
# a request id (52, one per request). The same characters from the same (seedable) random source, drawn in one call:
# a receive and its delete cost 0.16 CPU-ms per message in batches of ten instead of 0.20 (measured in-process).
def _random_string(self: MotoRandom, length: int = 20, include_digits: bool = True, lower_case: bool = False) -> str:
    value = "".join(self.choices(string.ascii_letters + (string.digits if include_digits else ""), k=length))
    return value.lower() if lower_case else value


def _receipt_handle() -> str:
    return "".join(mock_random.choices(string.ascii_lowercase, k=185))


MotoRandom.get_random_string = _random_string  # type: ignore[method-assign]
sqs_models.generate_receipt_handle = _receipt_handle

# moto found the message a receipt handle belongs to by asking every message of the queue, twice, each building the
# list of its handles: a delete cost O(backlog), a quarter of moto's CPU under a 1,000-order burst. The handles are
# indexed as they are issued; a message leaves the index when it is gone.
_by_receipt_handle: weakref.WeakValueDictionary[str, Message] = weakref.WeakValueDictionary()
_mark_received = Message.mark_received


def _mark_received_indexed(self: Message, visibility_timeout: int | None = None) -> None:
    _mark_received(self, visibility_timeout)
    assert self.receipt_handle is not None  # marking it received issued one
    _by_receipt_handle[self.receipt_handle] = self


Message.mark_received = _mark_received_indexed  # type: ignore[method-assign]


def _delete_message(self: Queue, receipt_handle: str) -> None:
    # Under the lock sends append under: moto built the queue's list without the deleted message outside it, and a
    # message sent meanwhile was dropped (an order then waited for the sweeper; found by make bench under a burst).
    with self._messages_lock:
        if receipt_handle in self.deleted_messages:
            return  # deleted already: moto answers a second delete with success
        message = _by_receipt_handle.get(receipt_handle)
        remaining = list(self._messages)  # a new list, as moto's: a receive may be walking the old one
        try:
            if message is None:
                raise ValueError(receipt_handle)
            remaining.remove(message)  # by identity: Message has no __eq__ of its own
        except ValueError:
            raise ReceiptHandleIsInvalid() from None
        self.pending_messages.discard(message)
        self.deleted_messages.update(handle for handle in message.all_receipt_handles if handle)
        self._messages = remaining


Queue.delete_message = _delete_message  # type: ignore[method-assign]


# A send reads every attribute of the queue to check one (ContentBasedDeduplication), and the approximate counts
# among them walk the whole backlog: each send cost O(backlog). They are not counted while a send reads them.
def _pending_message_groups(self: Queue) -> set[str]:
    # A receive walked the set of in-flight messages while a delete on another thread shrank it: "Set changed size
    # during iteration" answered the poller 500 (three times in a 1,000-order burst). list() copies the set under
    # the GIL, in one step.
    return {message.group_id for message in list(self.pending_messages) if message.group_id is not None}


Queue.pending_message_groups = property(_pending_message_groups)  # type: ignore[method-assign, assignment]

_sending = threading.local()


# moto's Message.visible and .delayed each read the clock; these read it once per walk, with the same comparisons.
def _ready(message: Message, now: float) -> bool:
    return now > message.visible_at and not now < message.delayed_until


def _walk(keep: Callable[[Message, float], bool]) -> Callable[[Queue], list[Message]]:
    def walk(self: Queue) -> list[Message]:
        now = unix_time_millis()
        return [message for message in self._messages if keep(message, now)]
    return walk


def _count(keep: Callable[[Message, float], bool]) -> property:
    walk = _walk(keep)
    return property(lambda self: 0 if getattr(_sending, "active", False) else len(walk(self)))


_send_message = SQSBackend.send_message


def _send_message_without_counting(self: SQSBackend, *args: Any, **kwargs: Any) -> Message:
    _sending.active = True
    try:
        return _send_message(self, *args, **kwargs)
    finally:
        _sending.active = False


SQSBackend.send_message = _send_message_without_counting  # type: ignore[method-assign]


Queue.messages = property(_walk(_ready))  # type: ignore[method-assign, assignment]
Queue.approximate_number_of_messages = _count(_ready)  # type: ignore[method-assign, assignment]
Queue.approximate_number_of_messages_delayed = _count(  # type: ignore[method-assign, assignment]
    lambda message, now: now < message.delayed_until)
Queue.approximate_number_of_messages_not_visible = _count(  # type: ignore[method-assign, assignment]
    lambda message, now: not now > message.visible_at)


# With nothing to return, moto's long poll sleeps until a message is sent, re-checking once a second: a delayed message
# (a message timer) or one whose visibility timeout ends was returned up to a second late, where SQS returns it as it
# becomes visible (a sniper's pool-open timer arrived 0-1 s after the open). The poll wakes at that moment instead.
def _wait_for_messages_or_the_next_timer(self: Queue, timeout: int) -> None:
    now = unix_time_millis()
    soonest = min((moment for message in self._messages
                   if (moment := max(message.visible_at, message.delayed_until)) > now), default=None)
    wait = timeout if soonest is None else min(timeout, (soonest - now) / 1000 + 0.001)
    with self._messages_lock:
        self._messages_lock.wait_for(lambda: self.messages, timeout=wait)


Queue.wait_for_messages = _wait_for_messages_or_the_next_timer  # type: ignore[method-assign]


class _OneReceiveWakes(threading.Condition):
    """A queue's message lock, on which a sent message wakes one waiting long poll: SQS gives a message to one
    receiver, and moto woke every long poll of the queue for each message sent, each walking the whole queue twice
    before all but one went back to sleep. With 20 long polls waiting, a message cost moto 1.90 CPU-ms to send,
    receive and delete, 1.39 with one woken (measured in-process, 1,000 messages). Each message sent notifies once,
    so as many polls wake as messages arrive."""

    def notify_all(self) -> None:
        self.notify()


_queue_init = Queue.__init__


def _queue_init_waking_one(self: Queue, *args: Any, **kwargs: Any) -> None:
    _queue_init(self, *args, **kwargs)
    self._messages_lock = _OneReceiveWakes()


Queue.__init__ = _queue_init_waking_one  # type: ignore[method-assign]

# Pure functions that moto runs on every request (a class's method names, found with inspect; attribute names
# converted to snake case one character at a time): their answers are remembered.
_method_names = functools.cache(core_utils.method_names_from_class)
_snake_case = functools.lru_cache(maxsize=4096)(core_utils.camelcase_to_underscores)
core_responses.method_names_from_class = _method_names
core_responses.camelcase_to_underscores = _snake_case
sqs_models.camelcase_to_underscores = _snake_case

# Which backend serves a host never changes, but moto matches the host against every service's URL patterns on each
# request, under a lock that all requests share.
_backend_for_host = DomainDispatcherApplication.get_backend_for_host


def _remembered_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
    known = self.__dict__.setdefault("_backends_by_host", {})
    if host not in known:
        known[host] = _backend_for_host(self, host)
    return known[host]


DomainDispatcherApplication.get_backend_for_host = _remembered_backend_for_host  # type: ignore[method-assign]


def counted(application: Callable[..., Any], ledger: Ledger) -> Callable[..., Any]:
    """The application, recording each SQS request's action in the ledger (when it is on): AWS bills SQS per
    request, the receives and deletes of Lambda's pollers included."""
    if not ledger.enabled:
        return application

    def count(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")  # the JSON protocol names its action here
        action = target.rpartition(".")[2] if target else _query_action(environ)
        ledger.record(SQS, action or "unknown")
        return application(environ, start_response)

    return count


def _query_action(environ: dict[str, Any]) -> str:
    """The query protocol's Action, from the URL (botocore puts it in the form body, which is left unread: moto
    reads it next; an action there is counted as "query")."""
    from urllib.parse import parse_qs

    return (parse_qs(environ.get("QUERY_STRING", "")).get("Action") or ["query"])[0]


class _ServerRequest(MotoRequest):
    from_wsgi_server = True  # as moto's own server marks the requests it receives


def sqs_json_first(application: Callable[..., Any]) -> Callable[..., Any]:
    """The application, with SQS's JSON protocol requests (``X-Amz-Target: AmazonSQS.*``) handed straight to moto's
    ``SQSResponse``, as moto's Flask view does, without Flask's request and response machinery around it: a
    ``SendMessage`` cost 0.30 CPU-ms through Flask and 0.20 this way (measured in-process), the same answer.
    Everything else (the query protocol, moto's own API) goes through moto's application."""

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS."):
            return application(environ, start_response)
        request = normalize_request(_ServerRequest(environ))
        recorder._record_request(request)
        status, headers, body = SQSResponse.dispatch(request, request.raw_url, dict(request.headers))
        return Response(body, status, headers)(environ, start_response)

    return dispatch


def serve(host: str, port: int) -> None:
    """moto's application behind waitress rather than werkzeug's development server, which closes every connection
    after one request (each SQS call then paid a TCP connection and a new thread, and waited on a 10 ms drain): as
    on AWS, clients keep their connections. Long polls hold a thread each, so there are enough for every poller."""
    import waitress
    from moto.moto_server.werkzeug_app import create_backend_app

    os.environ.setdefault("MOTO_PORT", str(port))  # moto builds queue URLs with it, as its own server does
    application = counted(sqs_json_first(DomainDispatcherApplication(create_backend_app)), Ledger.from_env())
    waitress.serve(application, host=host, port=port, threads=96,
                   connection_limit=2000, channel_timeout=300, asyncore_use_poll=True, ident="moto")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="moto's SQS for the local cloud")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    arguments = parser.parse_args()
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    serve(arguments.host, arguments.port)
