"""The local cloud's moto: a message sent wakes one waiting long poll, as SQS gives a message to one receiver."""

from __future__ import annotations

import threading
import time

from moto.sqs.models import Message

from infra.local.moto_server import Queue  # moto's class, patched as the local cloud runs it


def test_a_message_sent_wakes_one_waiting_long_poll_and_the_others_keep_waiting():
    queue = Queue("waits", "us-east-1", "000000000000")
    woke: list[float] = []
    started = time.monotonic()

    def long_poll() -> None:
        queue.wait_for_messages(2)
        woke.append(time.monotonic() - started)

    polls = [threading.Thread(target=long_poll) for _ in range(5)]
    for poll in polls:
        poll.start()
    time.sleep(0.2)  # all five are waiting
    queue.add_message(Message("m1", "body"))
    time.sleep(0.3)
    assert len(woke) == 1 and woke[0] < 1  # the one that takes it; moto woke all five
    for poll in polls:
        poll.join(5)
    assert len(woke) == 5 and all(moment >= 1.9 for moment in woke[1:])  # the others waited out their poll
