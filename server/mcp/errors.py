"""The core's errors as tool errors: an `isError` result with a message an agent can act on.

Anything else a tool raises is a bug: the SDK answers it with a generic tool error, logs
the traceback on stderr, and the server keeps serving.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ToolError

from orchestrator.errors import AllProvidersUnavailable, OrchestratorError, UnknownModelError
from orchestrator.resilience import IncompleteStream


def explain(exc: OrchestratorError) -> str:
    """The core's message (which already says what to set or raise), plus what an agent can do next."""
    message = str(exc)
    if isinstance(exc, AllProvidersUnavailable):
        return f"{message}; retry in {math.ceil(exc.retry_after)} s" if exc.retry_after else message
    if isinstance(exc, UnknownModelError):
        return message.replace(" Run `orchestrator models` to list them.", "") + " Call list_models for the ids."
    if isinstance(exc, IncompleteStream):
        return f"{message}. Partial answer:\n{exc.partial_text}"
    return message


@contextmanager
def tool_errors() -> Iterator[None]:
    try:
        yield
    except OrchestratorError as exc:
        raise ToolError(explain(exc)) from exc
