"""Orchestrator: one core that puts many AI models behind the editor.

The public surface is the types and the errors; everything else is internal. Heavy parts
(tiktoken, bandit, HTTP clients) load on first use, never at import.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import AnalysisResult, ChatStream, Completion, EditResult, Orchestrator, TextResult
    from .errors import (
        AllProvidersUnavailable,
        AuthenticationError,
        BadResponse,
        BudgetExceeded,
        ConfigError,
        ContextWindowError,
        InvalidInputError,
        InvalidRequestError,
        OrchestratorError,
        ProviderError,
        ProviderNotConfigured,
        ProviderTimeout,
        ProviderUnavailable,
        RateLimitError,
        UnknownModelError,
    )
    from .types import (
        AnalysisKind,
        Capability,
        Chunk,
        Document,
        Finding,
        Fix,
        Message,
        Position,
        Profile,
        Range,
        Request,
        Response,
        Severity,
        TextEdit,
        Usage,
    )

__version__ = "0.1.0"

__all__ = [
    "AllProvidersUnavailable",
    "AnalysisKind",
    "AnalysisResult",
    "AuthenticationError",
    "BadResponse",
    "BudgetExceeded",
    "Capability",
    "ChatStream",
    "Chunk",
    "Completion",
    "ConfigError",
    "ContextWindowError",
    "Document",
    "EditResult",
    "Finding",
    "Fix",
    "InvalidInputError",
    "InvalidRequestError",
    "Message",
    "Orchestrator",
    "OrchestratorError",
    "Position",
    "Profile",
    "ProviderError",
    "ProviderNotConfigured",
    "ProviderTimeout",
    "ProviderUnavailable",
    "Range",
    "RateLimitError",
    "Request",
    "Response",
    "Severity",
    "TextEdit",
    "TextResult",
    "UnknownModelError",
    "Usage",
    "__version__",
]


_TYPES = {
    "AnalysisKind",
    "Capability",
    "Chunk",
    "Document",
    "Finding",
    "Fix",
    "Message",
    "Position",
    "Profile",
    "Range",
    "Request",
    "Response",
    "Severity",
    "TextEdit",
    "Usage",
}


_FACADE = {"AnalysisResult", "ChatStream", "Completion", "EditResult", "Orchestrator", "TextResult"}


def __getattr__(name: str) -> object:
    # Lazy: `import orchestrator` must cost nothing; pydantic loads with the first type used.
    if name in _TYPES:
        from . import types

        return getattr(types, name)
    if name in _FACADE:
        from . import core

        return getattr(core, name)
    if name in __all__:
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
