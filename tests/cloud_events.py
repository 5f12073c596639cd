"""Recorded shapes of the AWS events the cloud entry points take (SQS batch, API Gateway v2)."""

from __future__ import annotations

import json
import uuid
from typing import Any


def sqs_record(body: str, receive_count: int = 1, message_id: str | None = None) -> dict[str, Any]:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1795600000000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795600000001",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:dex-quote",
        "awsRegion": "eu-west-1",
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def http_event(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
               query: dict[str, str] | None = None) -> dict[str, Any]:
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "queryStringParameters": query,
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
                           "requestId": uuid.uuid4().hex, "stage": "$default"},
        "body": text,
        "isBase64Encoded": False,
    }


def ws_event(event_type: str, connection_id: str, body: str | None = None, query: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, binary: bool = False) -> dict[str, Any]:
    """API Gateway WebSocket (Lambda proxy): CONNECT (with the handshake's query and headers), MESSAGE
    (its route key chosen as API Gateway does from `$request.body.action`) or DISCONNECT."""
    route = {"CONNECT": "$connect", "DISCONNECT": "$disconnect"}.get(event_type) or _route_key(body, binary)
    context = {
        "routeKey": route, "eventType": event_type, "messageDirection": "IN", "stage": "live",
        "connectionId": connection_id, "connectedAt": 1795600000000, "requestTimeEpoch": 1795600000123,
        "requestId": uuid.uuid4().hex, "extendedRequestId": uuid.uuid4().hex, "apiId": "a1b2c3d4e5",
        "domainName": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "wscat"},
    }
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": binary}
    if event_type == "CONNECT":
        event["headers"] = {"Host": context["domainName"], "Sec-WebSocket-Version": "13", **(headers or {})}
        event["queryStringParameters"] = query
    elif event_type == "MESSAGE":
        context["messageId"] = uuid.uuid4().hex[:16]
        event["body"] = body
    else:
        context["disconnectStatusCode"], context["disconnectReason"] = 1000, "Client-side close frame status 1000"
    return event


def _route_key(body: str | None, binary: bool) -> str:
    """What API Gateway routes a message by: its top-level "action" if a route has that key."""
    try:
        action = None if binary else json.loads(body or "").get("action")
    except (ValueError, AttributeError):
        action = None
    return action if action in ("subscribe", "cancel") else "$default"
