"""The JSON-RPC edge of the language server: pygls' protocol made to answer every request
(even one whose params do not parse), the mapping of the core's errors onto JSON-RPC errors,
and the plain-JSON shapes that travel inside command arguments and action data."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcRequestCancelled,
)
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

if TYPE_CHECKING:
    from .server import OrchestratorServer

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

# The params of the `workspace/executeCommand` being handled (pygls hands commands only their arguments).
COMMAND_PARAMS: contextvars.ContextVar[types.ExecuteCommandParams | None] = contextvars.ContextVar(
    "command_params", default=None
)
# That request's future: what `$/cancelRequest` cancels (pygls runs the command in another task).
COMMAND_REQUEST: contextvars.ContextVar[Any] = contextvars.ContextVar("command_request", default=None)
REQUEST_FAILED = -32803  # LSP: the request was valid, the work failed (a provider error, the budget)
_ANSWERED = object()  # a message already answered while it was being parsed


class Unfit(Exception):
    """A document the server will not analyze (too large, binary); the message says why."""


class OrchestratorProtocol(LanguageServerProtocol):
    """pygls' protocol, hardened: a request whose params do not parse gets an error response
    (pygls would log it and never answer, leaving the client waiting)."""

    _server: OrchestratorServer

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if "jsonrpc" not in data or "method" not in data:
                raise
            detail = _validation_detail(exc)
            method = data.get("method")
            if "id" in data:
                error = JsonRpcInvalidParams(f"invalid params for {method}: {detail}")
                self._send_response(data["id"], error=error.to_response_error())
            else:
                self._server.show(f"Ignored a malformed {method} notification: {detail}", types.MessageType.Warning)
            return _ANSWERED

    def _send_handler_result(self, future: Any, *, msg_id: Any) -> None:
        # An error we raised on purpose (bad params, a document not open, a provider failure)
        # is an answer, not a crash: pygls would log its traceback at ERROR level.
        if not future.cancelled() and isinstance(future.exception(), JsonRpcException):
            self._request_futures.pop(msg_id, None)
            error = future.exception()
            log.info("request %s failed: %s", msg_id, error)
            self._send_response(msg_id, error=error.to_response_error())
            return
        super()._send_handler_result(future, msg_id=msg_id)

    def handle_message(self, message: Any) -> None:
        if message is _ANSWERED:
            return
        super().handle_message(message)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Any:
        result = yield from super().lsp_initialize(params)
        self._server.adjust_capabilities(result.capabilities)
        return result

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Any:
        uri = params.text_document.uri
        if self._server.opened(uri) is None:  # pygls would raise KeyError deep in its workspace
            self._server.show(f"Ignored a change to {uri}: the document is not open", types.MessageType.Warning)
            return None
        return (yield from super().lsp_text_document__did_change(params))

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(self, params: types.ExecuteCommandParams) -> Any:
        # Both are copied into the command's task, which is created in this context. The
        # request's own future is what `$/cancelRequest` cancels: `rpc` links it to the task.
        COMMAND_PARAMS.set(params)
        COMMAND_REQUEST.set(self._request_futures.get(self.msg_id))  # type: ignore[arg-type]
        return (yield from super().lsp_workspace__execute_command(params))


def _validation_detail(exc: BaseException) -> str:
    cause = exc.__cause__
    if cause is not None:
        try:
            from cattrs import transform_error

            messages = transform_error(cause)  # type: ignore[arg-type]
            if messages:
                return "; ".join(messages[:3])
        except Exception as failure:  # noqa: BLE001 - only a nicer message; fall back to the plain one
            log.debug("cattrs could not describe %r: %s", cause, failure)
        return str(cause)[:300]
    return str(exc)[:300]


def rpc(handler: F) -> F:
    """Errors of the core as JSON-RPC errors: the request is answered, the server keeps serving.
    And a cancelled command request cancels the command's work."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        request, task = COMMAND_REQUEST.get(), asyncio.current_task()
        if request is not None and task is not None:
            # pygls runs a command in a task of its own; cancelling the request must reach it.
            request.add_done_callback(lambda f: f.cancelled() and task.get_loop().call_soon_threadsafe(task.cancel))
        try:
            return await handler(*args, **kwargs)
        except asyncio.CancelledError:
            if request is not None and not request.cancelled():
                # Cancelled from inside (the client cancelled the progress): pygls' command path
                # expects an outcome, not a cancelled task, or it never answers the request.
                raise JsonRpcRequestCancelled("cancelled") from None
            raise
        except JsonRpcException:
            raise
        except Unfit as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None
        except Exception as exc:
            raise _to_rpc(exc) from exc

    return wrapper  # type: ignore[return-value]


def _to_rpc(exc: Exception) -> JsonRpcException:
    from orchestrator.errors import ConfigError, InvalidInputError, OrchestratorError, UnknownModelError

    if isinstance(exc, InvalidInputError | UnknownModelError | ConfigError):
        return JsonRpcInvalidParams(str(exc))
    if isinstance(exc, OrchestratorError):
        return JsonRpcException(str(exc), code=REQUEST_FAILED)
    log.exception("unexpected error")
    return JsonRpcInternalError(f"internal error: {type(exc).__name__}: {exc}")


def json_range(raw: Any) -> types.Range:
    """A range a client sent inside command arguments or action data (plain JSON)."""
    try:
        s, e = raw["start"], raw["end"]
        values = [s["line"], s["character"], e["line"], e["character"]]
    except (KeyError, TypeError):
        raise JsonRpcInvalidParams(f"not a range: {raw!r:.80}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise JsonRpcInvalidParams(f"not a range: {raw!r:.80}")
    return types.Range(
        start=types.Position(line=values[0], character=values[1]),
        end=types.Position(line=values[2], character=values[3]),
    )


def range_json(rng: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": rng.start.line, "character": rng.start.character},
        "end": {"line": rng.end.line, "character": rng.end.character},
    }


def value_of(member: Any) -> str:
    """An lsprotocol enum member's wire value (their `str()` is the member's name)."""
    return str(getattr(member, "value", member))
