"""`GET /metrics`: Prometheus text format, with the official client library.

Two sources. What the gateway itself sees (requests by route and status, their latency,
time to first token, model call durations) is counted as it happens. What the ledger
knows (calls, tokens, cost, cache hits and errors per model, for every front end sharing
the data directory) and the live state (circuits, budget, cache) is read at scrape time,
so the ledger stays the one place where spend is added up.

A registry per app, never the library's global one: two gateways in one process (tests)
must not share counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from orchestrator.core import Orchestrator

_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_MODEL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
CIRCUIT_STATES = ("closed", "half_open", "open")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.requests = Counter(
            "orchestrator_http_requests", "HTTP requests answered", ("method", "route", "status"), registry=r
        )
        self.duration = Histogram(
            "orchestrator_http_request_duration_seconds",
            "Time from request to the end of the response (the whole stream, when streaming)",
            ("route",),
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("orchestrator_http_requests_in_flight", "Requests being answered", registry=r)
        self.ttft = Histogram(
            "orchestrator_http_time_to_first_token_seconds",
            "Time from request to the first token of a streamed answer",
            ("route",),
            buckets=_MODEL_BUCKETS,
            registry=r,
        )
        self.model_duration = Histogram(
            "orchestrator_model_call_duration_seconds",
            "Time the gateway waited for a model's complete answer, by the model that answered",
            ("model",),
            buckets=_MODEL_BUCKETS,
            registry=r,
        )
        self._live = _Live()
        r.register(self._live)
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._duration_children: dict[str, Any] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # The children are cached: `labels()` takes a lock and builds a tuple on every call.
        key = (method, route, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(method, route, str(status))
        child.inc()
        hist = self._duration_children.get(route)
        if hist is None:
            hist = self._duration_children[route] = self.duration.labels(route)
        hist.observe(seconds)

    async def render(self, orch: Orchestrator) -> bytes:
        await self._live.refresh(orch)
        return generate_latest(self.registry)


class _Live:
    """Ledger totals and live state, read just before each scrape."""

    def __init__(self) -> None:
        self._families: list[Metric] = []

    async def refresh(self, orch: Orchestrator) -> None:
        rows = await orch.ledger.summary(period="all", by="model")
        budget = await orch.ledger.budget_state()
        cache = await orch.cache.stats()
        calls = CounterMetricFamily("orchestrator_model_calls", "Model calls recorded in the ledger", labels=_ML)
        errors = CounterMetricFamily("orchestrator_model_errors", "Model calls that failed", labels=_ML)
        hits = CounterMetricFamily("orchestrator_cache_hits", "Answers served from the response cache", labels=_ML)
        cost = CounterMetricFamily("orchestrator_cost_usd", "Spend in US dollars, from the ledger", labels=_ML)
        tokens = CounterMetricFamily(
            "orchestrator_tokens", "Tokens by direction (input, output)", labels=(*_ML, "direction")
        )
        for row in rows:
            labels = (row.key.split("/", 1)[0], row.key)
            calls.add_metric(labels, row.calls)
            errors.add_metric(labels, row.errors)
            hits.add_metric(labels, row.cache_hits)
            cost.add_metric(labels, row.cost_usd)
            tokens.add_metric((*labels, "input"), row.input_tokens)
            tokens.add_metric((*labels, "output"), row.output_tokens)
        circuit = GaugeMetricFamily(
            "orchestrator_circuit_state", "1 for each provider's current circuit state", labels=("provider", "state")
        )
        for provider in orch.settings.configured_providers():
            state = orch.resilience.breaker(provider).state
            for name in CIRCUIT_STATES:
                circuit.add_metric((provider, name), 1.0 if name == state else 0.0)
        families: list[Metric] = [calls, errors, hits, cost, tokens, circuit]
        families.append(
            GaugeMetricFamily("orchestrator_budget_spent_usd", "Spent this month (UTC)", value=budget.spent_usd)
        )
        families.append(
            GaugeMetricFamily("orchestrator_budget_reserved_usd", "Held by calls in flight", value=budget.reserved_usd)
        )
        if budget.budget_usd is not None:
            families.append(
                GaugeMetricFamily("orchestrator_budget_limit_usd", "The monthly budget", value=budget.budget_usd)
            )
            families.append(
                GaugeMetricFamily(
                    "orchestrator_budget_used_ratio", "Share of the monthly budget spent", value=budget.fraction
                )
            )
        families.append(
            GaugeMetricFamily("orchestrator_cache_entries", "Answers stored in the cache", value=cache["entries"])
        )
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


_ML = ("provider", "model")


async def metrics_endpoint(request: Request) -> Response:
    state = request.app.state
    data = await state.metrics.render(state.orch)
    return Response(data, media_type=CONTENT_TYPE_PLAIN_0_0_4)
