"""Everything about HTTP and WebSocket frames: the request models that validate what arrives (``requests``) and
turn it into domain commands, the problem documents and the mapping of the use cases' refusals to statuses
(``problems``), the HTTP guard and responses (``http``), the WebSocket actions (``websocket``) and the OpenAPI
document (``openapi``). The use cases in ``chalicelib/services`` know none of it."""
