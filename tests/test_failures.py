"""Status codes and retry hints → the error tree (pure functions; the wire is tested
against the fake server in test_providers.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.errors import (
    AuthenticationError,
    ContextWindowError,
    InvalidRequestError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimitError,
)
from orchestrator.providers.failures import from_status, from_stream_error, parse_duration, retry_after

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("12ms", 0.012), ("1h2m3.5s", 3723.5), ("45.8s", 45.8), ("2", 2.0), ("x", None)],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_retry_after_header_forms() -> None:
    assert retry_after({"Retry-After": "7"}, now=NOW) == 7.0
    assert retry_after({"retry-after-ms": "1500"}, now=NOW) == 1.5
    http_date = "Thu, 26 Nov 2026 12:00:30 GMT"
    assert retry_after({"Retry-After": http_date}, now=NOW) == 30.0


def test_openai_reset_uses_the_exhausted_budget() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "6m0s",
        "x-ratelimit-remaining-tokens": "5000",
        "x-ratelimit-reset-tokens": "12ms",
    }
    assert retry_after(headers, now=NOW) == 360.0


def test_anthropic_reset_time() -> None:
    reset = (NOW + timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    headers = {"anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": reset}
    assert retry_after(headers, now=NOW) == 20.0


def test_gemini_retry_info_in_body() -> None:
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "45.8s"}],
        }
    }
    err = from_status("gemini", 429, {}, json.dumps(body).encode())
    assert isinstance(err, RateLimitError) and err.retry_after == pytest.approx(45.8)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, {"error": {"message": "bad key", "code": "invalid_api_key"}}, AuthenticationError),
        (403, {"error": {"message": "denied", "status": "PERMISSION_DENIED"}}, AuthenticationError),
        (429, {"error": {"message": "quota", "code": "insufficient_quota"}}, AuthenticationError),
        (400, {"error": {"message": "too long", "code": "context_length_exceeded"}}, ContextWindowError),
        (
            400,
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "prompt is too long: 250000 tokens > 200000 maximum",
                },
            },
            ContextWindowError,
        ),
        (400, {"error": {"message": "unknown field foo"}}, InvalidRequestError),
        (404, {"error": {"message": "model not found"}}, InvalidRequestError),
        (500, {"error": {"message": "boom"}}, ProviderUnavailable),
        (503, "upstream unavailable", ProviderUnavailable),
        (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, ProviderUnavailable),
        (504, "", ProviderTimeout),
    ],
)
def test_status_mapping(status: int, body: object, kind: type) -> None:
    raw = (json.dumps(body) if not isinstance(body, str) else body).encode()
    err = from_status("p", status, {}, raw)
    assert type(err) is kind and err.status == status and err.provider == "p"
    assert str(status) in str(err)


def test_error_messages_never_carry_a_key() -> None:
    key = "sk-proj-" + "Q" * 40
    body = {"error": {"message": f"Incorrect API key provided: {key}"}}
    err = from_status("openai", 401, {}, json.dumps(body).encode())
    assert key not in str(err) and key not in repr(err)


def test_stream_errors() -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert isinstance(from_stream_error("anthropic", overloaded), ProviderUnavailable)
    assert isinstance(from_stream_error("openai", {"error": {"type": "rate_limit_exceeded"}}), RateLimitError)
