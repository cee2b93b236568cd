"""Thin Chalice handlers: each turns an event into a service call; the code lives in chalicelib/."""

from chalice import AuthResponse, Chalice, Rate, Response
from chalice.app import AuthRequest, CloudWatchEvent, SQSEvent, WebsocketEvent

from chalicelib import bootstrap
from chalicelib.adapters.outages import DEPENDENCY_DOWN
from chalicelib.errors import ProblemError, Unauthorized
from chalicelib.http import answers_problems, dependency_down, json_response, problem_response
from chalicelib.schemas import parse_market_order
from chalicelib.settings import ORDERS_QUEUE_NAME
from chalicelib.worker import process_order_batch

app = Chalice(app_name="order-engine")
app.websocket_api.session = bootstrap.websocket_session()
engine = bootstrap.Engine(app)


@app.authorizer()
def jwt_auth(auth_request: AuthRequest) -> AuthResponse:
    try:
        user_id = engine.verify(auth_request.token)
    except ProblemError:
        raise Exception("Unauthorized") from None  # API Gateway's contract for answering 401
    return AuthResponse(routes=["*"], principal_id=user_id)


def _user_id() -> str:
    return app.current_request.context["authorizer"]["principalId"]


@app.route("/orders", methods=["POST"], authorizer=jwt_auth, content_types=["application/json"])
@answers_problems
def place_order() -> Response:
    request = app.current_request
    order = parse_market_order(request.raw_body)
    placed = engine.placement.place(_user_id(), request.headers.get("idempotency-key"), order, app.lambda_context)
    return json_response(placed, status=202, headers={"Location": f"/orders/{placed['orderId']}"})


@app.route("/orders/{order_id}", methods=["GET"], authorizer=jwt_auth)
@answers_problems
def get_order(order_id: str) -> Response:
    return json_response(engine.orders.view(_user_id(), order_id))


@app.route("/dex/swaps", methods=["GET"])
@answers_problems
def dex_swaps() -> Response:
    order_id = (app.current_request.query_params or {}).get("orderId", "")
    return json_response({"orderId": order_id, "swaps": [s.to_json() for s in engine.dex.swaps_for(order_id)]})


@app.route("/health", methods=["GET"])
def health() -> Response:
    checks = engine.health()
    down = sorted(name for name, result in checks.items() if result != "ok")
    return json_response({"status": "down" if down else "ok", "down": down, "checks": checks},
                         status=503 if down else 200)


@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> Response | None:
    token = (event.to_dict().get("queryStringParameters") or {}).get("token")
    try:
        engine.websocket.connect(event.connection_id, token)
    except Unauthorized as error:
        return problem_response(error)
    except DEPENDENCY_DOWN as error:
        return problem_response(dependency_down(error))
    return None


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> None:
    engine.websocket.disconnect(event.connection_id)


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> None:
    engine.websocket.receive(event.connection_id, event.body)


@app.on_sqs_message(queue=ORDERS_QUEUE_NAME, batch_size=10, maximum_batching_window_in_seconds=0)
def execute_orders(event: SQSEvent) -> dict:
    return process_order_batch(event.to_dict(), event.context, engine.executor, engine.redelivery,
                               engine.checkpoint)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep_stuck_orders(event: CloudWatchEvent) -> dict:
    report = engine.sweeper.sweep()
    return {"requeued": report.requeued, "ended": report.ended, "caughtUp": report.caught_up}
