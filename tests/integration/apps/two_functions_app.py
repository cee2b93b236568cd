"""A Chalice app whose REST route waits until the test lets it answer, and whose WebSocket messages are recorded."""

from chalice import Chalice

from tests.integration.apps import turnstile

app = Chalice(app_name="two-functions")
app.experimental_feature_flags.update(["WEBSOCKETS"])


@app.route("/wait")
def wait():
    turnstile.rest_may_answer.wait(30)
    return {"answered": True}


@app.on_ws_connect()
def connect(event):
    pass


@app.on_ws_message()
def message(event):
    turnstile.messages.append(event.body)
    turnstile.message_arrived.set()
