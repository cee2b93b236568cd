"""Thin Chalice handlers: each turns an event into a service call; the code lives in chalicelib/."""

from chalice import AuthResponse, AuthRoute, Chalice, Rate, Response
from chalice.app import AuthRequest, CloudWatchEvent, Request, SQSEvent, WebsocketEvent

from chalicelib import bootstrap, logs
from chalicelib.api.http import (
    answers_problems,
    created_location,
    dependency_down,
    dependency_errors,
    guard,
    json_response,
    problem_response,
    view_response,
)
from chalicelib.api.problems import Forbidden, ProblemError, Unprocessable, problem_for
from chalicelib.services.errors import ServiceError
from chalicelib.settings import ORDERS_QUEUE_NAME, POOL_EVENTS_QUEUE_NAME

# Libraries only some functions use (pydantic for the request schemas, Powertools' batch processor for the worker)
# are imported by those functions: a cold start loads what its function needs and nothing more.

MAX_ORDER_ID_LENGTH = 128
ADMIN_PATHS = ("/dex/tokens", "/dex/tokens/*", "/dex/pools", "/dex/pools/*")
# API Gateway keeps the authorizer's policy for a token this long (Chalice's default would leave the template without
# it): a trader's requests within it skip the authorizer. A revoked token is refused at the latest this long after.
AUTHORIZER_TTL_SECONDS = 300

app = Chalice(app_name="order-engine")
app.experimental_feature_flags.update(["WEBSOCKETS"])  # `chalice package` refuses WebSocket handlers without it
engine = bootstrap.engine  # built by the first invocation that needs it, never by the authorizer


@app.authorizer(ttl_seconds=AUTHORIZER_TTL_SECONDS)  # API Gateway caches the policy per token for this long
def jwt_auth(auth_request: AuthRequest) -> AuthResponse:
    try:
        principal = bootstrap.verify_token(auth_request.token)
    except ServiceError as refused:
        logs.logger.info("token refused: %s", refused.detail)  # what is wrong with it, never the token itself
        raise Exception("Unauthorized") from None  # API Gateway's contract for answering 401
    # A token without the orders:write scope may only read: API Gateway answers 403 to anything else. One with
    # dex:admin may list on the venues too (the routes check the scope themselves, for a trader's token).
    routes: list[str | AuthRoute] = ["*"] if principal.can_trade else [AuthRoute("*", ["GET"])]
    if principal.can_list_on_venues and not principal.can_trade:
        routes += [AuthRoute(path, ["POST"]) for path in ADMIN_PATHS]
    # The context reaches the routes as requestContext.authorizer (strings only, as API Gateway passes them).
    return AuthResponse(routes=routes, principal_id=principal.user_id,
                        context={"scope": " ".join(sorted(principal.scopes))})


@app.middleware("http")
def guard_requests(request: Request, get_response) -> Response:
    with logs.invocation(app.lambda_context, idempotencyKey=request.headers.get("idempotency-key"),
                         orderId=(request.uri_params or {}).get("order_id")):
        return guard(request, get_response, engine().rate_limiter)


def _user_id() -> str:
    return app.current_request.context["authorizer"]["principalId"]


def _query() -> dict[str, str]:
    return dict(app.current_request.query_params or {})


@app.route("/orders", methods=["POST"], authorizer=jwt_auth, content_types=["application/json"])
@answers_problems
def place_order() -> Response:
    from chalicelib.api.requests import parse_order
    from chalicelib.api.views import OrderAccepted

    request = app.current_request
    order = parse_order(request.raw_body, bootstrap.settings().max_amount_in)
    placed = engine().placement.place(_user_id(), request.headers.get("idempotency-key"), order.to_command(),
                                    app.lambda_context)
    logs.bind(orderId=placed.order_id)
    logs.logger.info("order accepted", extra={"status": str(placed.status)})
    return view_response(OrderAccepted.of(placed), status=202,
                         headers={"Location": created_location(request.context, placed.order_id)})


@app.route("/orders", methods=["GET"], authorizer=jwt_auth)
@answers_problems
def list_orders() -> Response:
    from chalicelib.api.requests import parse_order_list_query
    from chalicelib.api.views import OrderPage

    query = parse_order_list_query(_query()).to_command()
    return view_response(OrderPage.of(engine().orders.page(_user_id(), query)))


@app.route("/orders/{order_id}", methods=["GET"], authorizer=jwt_auth)
@answers_problems
def get_order(order_id: str) -> Response:
    details = engine().orders.view(_user_id(), order_id)
    from chalicelib.api.views import Order  # pydantic, once there is an order to render: a 404 needs none

    return view_response(Order.of_details(details))


@app.route("/orders/{order_id}", methods=["DELETE"], authorizer=jwt_auth)
@answers_problems
def cancel_order(order_id: str) -> Response:
    details = engine().orders.cancel(_user_id(), order_id)
    from chalicelib.api.views import Order

    return view_response(Order.of_details(details))


@app.route("/orders/by-client-id/{client_order_id}", methods=["GET"], authorizer=jwt_auth)
@answers_problems
def get_order_by_client_id(client_order_id: str) -> Response:
    return get_order(engine().orders.by_client_id(_user_id(), client_order_id))


@app.route("/orders/by-client-id/{client_order_id}", methods=["DELETE"], authorizer=jwt_auth)
@answers_problems
def cancel_order_by_client_id(client_order_id: str) -> Response:
    return cancel_order(engine().orders.by_client_id(_user_id(), client_order_id))


@app.route("/quote", methods=["GET"])
@answers_problems
def quote() -> Response:
    from chalicelib.api.requests import parse_quote_query
    from chalicelib.api.views import Quote

    query = parse_quote_query(_query(), bootstrap.settings().max_amount_in).to_command()
    return view_response(Quote.of(engine().market.quote(query)))


@app.route("/tokens", methods=["GET"])
@answers_problems
def tokens() -> Response:
    from chalicelib.api.views import Tokens

    return view_response(Tokens.of(engine().market.tokens()))


@app.route("/pools", methods=["GET"])
@answers_problems
def pools() -> Response:
    from chalicelib.api.views import Pools

    return view_response(Pools.of(engine().market.pools()))


@app.route("/dex/swaps", methods=["GET"])
@answers_problems
def dex_swaps() -> Response:
    from chalicelib.api.views import Swaps

    order_id = _query().get("orderId")
    if not order_id:
        raise Unprocessable("orderId is required", [{"field": "orderId", "message": "required"}])
    if len(order_id) > MAX_ORDER_ID_LENGTH or not order_id.isprintable():
        # PostgreSQL refuses NUL in text, and no order's id holds a control character: no ledger entry can match.
        raise Unprocessable("orderId must be at most 128 printable characters",
                            [{"field": "orderId", "message": "at most 128 printable characters"}])
    return view_response(Swaps.of(order_id, engine().market.swaps(order_id)))


@app.route("/dex/swaps", methods=["POST"], authorizer=jwt_auth, content_types=["application/json"])
@answers_problems
def trade_on_a_venue() -> Response:
    """Another trader's swap straight on one pool, as any wallet trades on a chain: it moves the price, and the
    venues publish it as a pool event before the answer goes."""
    from chalicelib.api.requests import parse_direct_swap

    trade = parse_direct_swap(app.current_request.raw_body, bootstrap.settings().max_amount_in).to_command()
    try:
        receipt = engine().market.trade(_user_id(), trade)
    finally:
        _publish_pool_events()
    from chalicelib.api.views import Swap

    return view_response(Swap.of(receipt), status=201)


def _require_scope(scope: str, needed_for: str) -> None:
    """The token's scopes, as the authorizer passed them on; 403 without ``scope``."""
    scopes = (app.current_request.context["authorizer"].get("scope") or "").split()
    if scope not in scopes:
        raise Forbidden(f"{needed_for} needs a token with the {scope} scope")


def _require_admin() -> None:
    from chalicelib.auth import DEX_ADMIN_SCOPE

    _require_scope(DEX_ADMIN_SCOPE, "listing on the venues")


@app.route("/dex/tokens", methods=["POST"], authorizer=jwt_auth, content_types=["application/json"])
@answers_problems
def list_token() -> Response:
    """A new token on the venues' registry, as its creator mints it on a chain."""
    _require_admin()
    from chalicelib.api.requests import parse_token_listing
    from chalicelib.api.views import TokenInfo

    listed = engine().launches.list_token(parse_token_listing(app.current_request.raw_body).to_command())
    return view_response(TokenInfo.of(listed), status=201)


@app.route("/dex/tokens/{symbol}/revoke", methods=["POST"], authorizer=jwt_auth, content_types=["application/json"])
@answers_problems
def revoke_authority(symbol: str) -> Response:
    _require_admin()
    from chalicelib.api.requests import parse_revoke
    from chalicelib.api.views import TokenInfo

    asked = parse_revoke(app.current_request.raw_body)
    try:
        listing = engine().launches.revoke(symbol, asked.authority)
    finally:
        _publish_pool_events()  # a sniper waiting for the revoke is checked again on its pools' event
    return view_response(TokenInfo.of(listing))


@app.route("/dex/pools", methods=["POST"], authorizer=jwt_auth, content_types=["application/json"])
@answers_problems
def open_pool() -> Response:
    _require_admin()
    from chalicelib.api.requests import parse_pool_launch
    from chalicelib.api.views import LaunchedPool

    command = parse_pool_launch(app.current_request.raw_body).to_command()
    try:
        pool = engine().launches.open_pool(command)
    finally:
        _publish_pool_events()  # snipers waiting for the pair wake on it
    return view_response(LaunchedPool.of(pool), status=201)


# It takes no body: whatever a client sends with an empty one (curl none, others application/octet-stream) is fine.
@app.route("/dex/pools/{pool_id}/burn-lp", methods=["POST"], authorizer=jwt_auth,
           content_types=["application/json", "application/octet-stream", "application/x-www-form-urlencoded"])
@answers_problems
def burn_lp(pool_id: str) -> Response:
    _require_admin()
    from chalicelib.api.views import LaunchedPool

    try:
        pool = engine().launches.burn_lp(pool_id)
    finally:
        _publish_pool_events()
    return view_response(LaunchedPool.of(pool))


@app.route("/metrics", methods=["GET"], authorizer=jwt_auth)
@answers_problems
def metrics() -> Response:
    from chalicelib.adapters import prometheus  # only a scrape pays for importing it
    from chalicelib.auth import METRICS_SCOPE

    _require_scope(METRICS_SCOPE, "reading the engine's metrics")

    return Response(body=prometheus.render(engine().metrics.snapshot()).decode(), status_code=200,
                    headers={"Content-Type": prometheus.CONTENT_TYPE})


@app.route("/local/tokens", methods=["POST"], content_types=["application/json"])
@answers_problems
def local_token() -> Response:
    """The local stage mints a token for a user name (its secret is public); on AWS there is no such route: 404."""
    from datetime import UTC, datetime, timedelta

    from chalicelib.api.problems import NotFound
    from chalicelib.api.requests import parse_local_token
    from chalicelib.api.views import LocalToken
    from chalicelib.auth import issue_token
    from chalicelib.settings import LOCAL_JWT_SECRET

    settings = bootstrap.settings()
    if settings.stage != "local" or settings.jwt_secret != LOCAL_JWT_SECRET:
        raise NotFound("no such route: tokens are minted only by the local stage")
    asked = parse_local_token(app.current_request.raw_body)
    ttl = timedelta(hours=12)
    token = issue_token(asked.user, LOCAL_JWT_SECRET, ttl=ttl, scope=asked.scope)
    return view_response(LocalToken(token=token, user=asked.user, scope=asked.scope,
                                    expiresAt=datetime.now(UTC) + ttl), status=201)


@app.route("/openapi.json", methods=["GET"])
def openapi() -> Response:
    from chalicelib.api.openapi import document  # built from the models on first use, not at every cold start

    return json_response(document())


def _page(name: str) -> Response:
    from chalicelib.api import pages

    _, content_type = pages.asset(name)
    return Response(body=pages.page(name, bootstrap.settings().websocket_client_url), status_code=200,
                    headers=pages.headers(content_type))


@app.route("/docs", methods=["GET"])
def docs() -> Response:
    """The API reference, rendered in the browser from /openapi.json."""
    return _page("docs.html")


@app.route("/app", methods=["GET"])
def blotter() -> Response:
    """The web blotter: sign in, place and watch orders, cancel them, watch the pools."""
    return _page("app.html")


@app.route("/static/{name}", methods=["GET"])
@answers_problems
def static_asset(name: str) -> Response:
    from chalicelib.api import pages
    from chalicelib.api.problems import NotFound

    try:
        text, content_type = pages.asset(name)
    except pages.NoSuchAsset:
        raise NotFound(f"no asset {name!r}") from None
    return Response(body=text, status_code=200, headers=pages.headers(content_type))


@app.route("/asyncapi.json", methods=["GET"])
def asyncapi() -> Response:
    from chalicelib.api.asyncapi import document

    return json_response(document())


@app.route("/health", methods=["GET"])
def health() -> Response:
    from chalicelib.api.views import Health

    health = Health.of(engine().health())
    return view_response(health, status=503 if health.down else 200)


@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> Response | None:
    token = (event.to_dict().get("queryStringParameters") or {}).get("token")
    with logs.invocation(event.context, connectionId=event.connection_id):
        try:
            engine().websocket.connect(event.connection_id, token)
        except ProblemError as error:
            logs.logger.info("connection refused: %s", error.detail)
            return problem_response(error)
        except ServiceError as refused:
            logs.logger.info("connection refused: %s", refused.detail)
            return problem_response(problem_for(refused))
        except dependency_errors() as error:
            return problem_response(dependency_down(error))
        return None


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> None:
    with logs.invocation(event.context, connectionId=event.connection_id):
        engine().websocket.disconnect(event.connection_id)


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> None:
    with logs.invocation(event.context, connectionId=event.connection_id):
        engine().websocket.receive(event.connection_id, event.body, event.context)


@app.on_sqs_message(queue=ORDERS_QUEUE_NAME, batch_size=10, maximum_batching_window_in_seconds=0)
def execute_orders(event: SQSEvent) -> dict:
    from chalicelib.worker import process_order_batch

    with logs.invocation(event.context):
        wired = engine()
        try:
            return process_order_batch(event.to_dict(), event.context, wired.executor, wired.redelivery,
                                       wired.checkpoint, wired.metric_sink)
        finally:
            _publish_pool_events()


def _publish_pool_events() -> None:
    """The pools this invocation's swaps changed, in one event, before the invocation ends."""
    try:
        engine().pool_events.flush()
    except dependency_errors() as error:
        # Kept for the next invocation's flush; the backstop rechecks the resting orders meanwhile.
        logs.logger.warning("pool events not published yet: %s", type(error).__name__)


@app.on_sqs_message(queue=POOL_EVENTS_QUEUE_NAME, batch_size=10, maximum_batching_window_in_seconds=0)
def trigger_limit_orders(event: SQSEvent) -> None:
    """Wakes the resting limit orders the venues' new prices may fill; a failure returns the batch (it is safe to
    evaluate a pair again: a triggered order is never triggered twice)."""
    from chalicelib.adapters.pool_events import pairs_of, pool_ids_of

    with logs.invocation(event.context):
        records = event.to_dict()["Records"]
        try:  # the market streams first (they wait on nothing), but never in the way of waking resting orders
            engine().market_feed.pools_changed(pool_ids_of(records))
        except dependency_errors() as error:
            logs.logger.warning("market streams not updated: %s", type(error).__name__)
        report = engine().triggers.on_pools_changed(pairs_of(records))
        if report.triggered:
            logs.logger.info("triggered", extra={"orders": report.triggered, "checked": report.checked})


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep_stuck_orders(event: CloudWatchEvent) -> dict:
    with logs.invocation(event.context):
        report = engine().sweeper.sweep()
        if report.requeued or report.ended or report.caught_up or report.rechecked_triggered:
            logs.logger.info("swept", extra={"requeued": report.requeued, "ended": report.ended,
                                             "caughtUp": report.caught_up, "expiryTimers": report.expiry_timers,
                                             "recheckTriggered": report.rechecked_triggered})
    return {"requeued": report.requeued, "ended": report.ended, "caughtUp": report.caught_up,
            "expiryTimers": report.expiry_timers, "recheckTriggered": report.rechecked_triggered}


@app.lambda_function(name="migrate_database")
def migrate_database(event: dict, context) -> dict:
    """A CloudFormation custom resource (through the CDK's provider): every deployment brings the schema and the
    mock venues' pools up to date before traffic reaches the new code."""
    with logs.invocation(context):
        logs.logger.info("bringing the schema and the venues up to date",
                         extra={"requestType": event.get("RequestType")})
        return engine().migrate_database(event.get("RequestType", "Create"))
