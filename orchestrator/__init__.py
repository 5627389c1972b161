"""Orchestrator: one core that puts many AI models behind the editor.

The public surface is the types and the errors; everything else is internal. Heavy parts
(tiktoken, bandit, HTTP clients) load on first use, never at import.
"""

from .errors import (
    AllProvidersUnavailable,
    AuthenticationError,
    BadResponse,
    BudgetExceeded,
    ConfigError,
    ContextWindowError,
    InvalidInputError,
    OrchestratorError,
    ProviderError,
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
    "AuthenticationError",
    "BadResponse",
    "BudgetExceeded",
    "Capability",
    "Chunk",
    "ConfigError",
    "ContextWindowError",
    "Document",
    "Finding",
    "Fix",
    "InvalidInputError",
    "Message",
    "OrchestratorError",
    "Position",
    "Profile",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "Range",
    "RateLimitError",
    "Request",
    "Response",
    "Severity",
    "TextEdit",
    "UnknownModelError",
    "Usage",
    "__version__",
]
