"""The provider protocol and the HTTP plumbing every wire format shares.

A provider is one method wide: `stream(request)` yields text `Chunk`s and ends with one
carrying `Usage` and the finish reason. `complete(request)` gives the same result in one
`Response`. Errors are always from `orchestrator.errors`; aiohttp's own exceptions never
escape (their reprs can carry request headers, and with them a key).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import aiohttp
from pydantic_core import from_json, to_json

from ..errors import BadResponse, ProviderError, ProviderTimeout, ProviderUnavailable
from ..types import Chunk, Request, Response, Usage
from . import failures

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..tokens import TokenCounter

log = logging.getLogger(__name__)


@runtime_checkable
class Provider(Protocol):
    name: str

    def stream(self, request: Request) -> AsyncIterator[Chunk]: ...

    async def complete(self, request: Request) -> Response: ...


class HttpClients:
    """One pooled aiohttp session per provider, created on first use inside the loop."""

    def __init__(self, *, connect_timeout: float = 10.0, read_timeout: float = 120.0, limit: int = 100):
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._limit = limit
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def session(self, provider: str) -> aiohttp.ClientSession:
        session = self._sessions.get(provider)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit, ttl_dns_cache=300)
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                # pydantic_core's encoder is ~5x the stdlib's: it shows at 64 calls in flight.
                json_serialize_bytes=to_json,
                # Provider SDKs send their own user agent; ours says who is calling.
                headers={"User-Agent": "orchestrator/0.1"},
            )
            self._sessions[provider] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=False)


class HTTPProvider:
    """Shared by the three wire formats: posting, error mapping, usage and cost."""

    name: str

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        http: HttpClients,
        catalog: Catalog | None = None,
        counter: TokenCounter | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._key = api_key or None
        self._http = http
        self._catalog = catalog
        self._counter = counter
        self._extra_headers = dict(headers or {})

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    # -- to be provided by each format ---------------------------------------------------

    def stream(self, request: Request) -> AsyncIterator[Chunk]:
        raise NotImplementedError

    async def complete(self, request: Request) -> Response:
        """Default: collect the stream. Formats with a cheaper plain endpoint override it."""
        parts: list[str] = []
        final: Chunk | None = None
        async for chunk in self.stream(request):
            if chunk.text:
                parts.append(chunk.text)
            if chunk.usage is not None:
                final = chunk
        usage = final.usage if final and final.usage else self.usage(request, "".join(parts), None, None)
        return Response(
            model=request.model,
            provider=self.name,
            text="".join(parts),
            usage=usage,
            finish_reason=final.finish_reason if final else None,
        )

    # -- shared plumbing -----------------------------------------------------------------

    @asynccontextmanager
    async def _post(
        self, url: str, body: dict[str, Any], headers: dict[str, str]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST and yield a 2xx response; anything else is raised as our error, from None."""
        session = self._http.session(self.name)
        error: ProviderError | None = None
        try:
            async with session.post(url, json=body, headers={**self._extra_headers, **headers}) as resp:
                if resp.status >= 300:
                    raw = await resp.read()
                    error = failures.from_status(self.name, resp.status, resp.headers, raw)
                else:
                    yield resp
                    return
        except ProviderError:
            raise
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise ProviderTimeout(f"{self.name} did not answer in time", provider=self.name) from None
        except aiohttp.ClientPayloadError as exc:
            raise BadResponse(
                f"{self.name} cut the response short ({type(exc).__name__})", provider=self.name
            ) from None
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise ProviderUnavailable(
                f"cannot reach {self.name} at {self.base_url} ({type(exc).__name__}: {_reason(exc)})",
                provider=self.name,
            ) from None
        except aiohttp.ClientResponseError as exc:
            raise BadResponse(f"{self.name}: malformed HTTP response ({exc.status})", provider=self.name) from None
        except aiohttp.ClientError as exc:
            raise ProviderUnavailable(f"{self.name}: {type(exc).__name__}", provider=self.name) from None
        if error is not None:
            raise error

    async def _post_json(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        async with self._post(url, body, headers) as resp:
            raw = await resp.read()
        try:
            return from_json(raw)
        except ValueError:
            raise BadResponse(
                f"{self.name} answered with malformed JSON ({len(raw)} bytes)", provider=self.name
            ) from None

    def usage(self, request: Request, text: str, input_tokens: int | None, output_tokens: int | None) -> Usage:
        """The provider's own counts when it sent them; our estimate otherwise. Cost from the catalog."""
        estimated = input_tokens is None or output_tokens is None
        if estimated and self._counter is not None:
            if input_tokens is None:
                pairs = [(m.role, m.content) for m in request.messages]
                if request.system:
                    pairs.insert(0, ("system", request.system))
                input_tokens = self._counter.count_messages(pairs)
            if output_tokens is None:
                output_tokens = self._counter.count(text)
        input_tokens = input_tokens or 0
        output_tokens = output_tokens or 0
        cost = 0.0
        if self._catalog is not None:
            info = self._catalog.find(self.name, request.model)
            if info is not None:
                cost = info.cost(input_tokens, output_tokens)
        return Usage(input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost, estimated=estimated)

    def _load(self, data: str) -> Any:
        try:
            return from_json(data)
        except ValueError:
            raise BadResponse(f"{self.name} sent a malformed stream event: {data[:80]!r}", provider=self.name) from None


def _reason(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    if os_error is not None and getattr(os_error, "strerror", None):
        return str(os_error.strerror)
    return str(exc).split(" [")[0][:120]
