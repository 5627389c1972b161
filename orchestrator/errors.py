"""The one exception tree of the orchestrator.

    OrchestratorError
    ├── ConfigError                 a config file or value is wrong (names file, line, key)
    ├── UnknownModelError           a model id not in the catalog
    ├── InvalidInputError           bad input from a user or client (unknown kind, missing path)
    ├── ProviderNotConfigured       no key / endpoint for the provider a request needs
    ├── ProviderError               a model provider failed; `retryable` says whether to retry
    │   ├── AuthenticationError     bad or missing key: never retried on the same provider
    │   ├── InvalidRequestError     400/404/422: the request itself is wrong (unknown model, bad field)
    │   ├── RateLimitError          429; `retry_after` seconds when the provider said
    │   ├── ContextWindowError      the prompt does not fit: try a larger-context model
    │   ├── ProviderUnavailable     5xx, 529, connection refused
    │   ├── ProviderTimeout         connect or read timeout
    │   └── BadResponse             malformed JSON or SSE, a stream cut before its end
    ├── BudgetExceeded              the monthly budget would be overspent
    └── AllProvidersUnavailable     every candidate failed; carries each error

Messages never contain API keys: providers build them from status codes and bodies,
and `redact` is applied to anything that might echo a header.
"""

from __future__ import annotations

import re


class OrchestratorError(Exception):
    """Base of every error the orchestrator raises on purpose."""


class ConfigError(OrchestratorError):
    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, key: str | None = None):
        self.file = file
        self.line = line
        self.key = key
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        super().__init__(f"{where}{message}")


class UnknownModelError(OrchestratorError):
    def __init__(self, model: str, known: list[str]):
        self.model = model
        close = [k for k in known if model.split("/")[-1] in k][:5]
        hint = f" Did you mean: {', '.join(close)}?" if close else " Run `orchestrator models` to list them."
        super().__init__(f"unknown model {model!r}.{hint}")


class InvalidInputError(OrchestratorError):
    pass


class ProviderNotConfigured(OrchestratorError):
    pass


class ProviderError(OrchestratorError):
    retryable = False

    def __init__(self, message: str, *, provider: str = "", status: int | None = None):
        self.provider = provider
        self.status = status
        super().__init__(redact(message))


class AuthenticationError(ProviderError):
    pass


class InvalidRequestError(ProviderError):
    pass


class RateLimitError(ProviderError):
    retryable = True

    def __init__(self, message: str, *, provider: str = "", status: int | None = 429, retry_after: float | None = None):
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class ContextWindowError(ProviderError):
    pass


class ProviderUnavailable(ProviderError):
    retryable = True


class ProviderTimeout(ProviderError):
    retryable = True


class BadResponse(ProviderError):
    retryable = True


class BudgetExceeded(OrchestratorError):
    def __init__(self, message: str, *, spent: float = 0.0, budget: float = 0.0):
        self.spent = spent
        self.budget = budget
        super().__init__(message)


class AllProvidersUnavailable(OrchestratorError):
    def __init__(self, errors: dict[str, ProviderError], retry_after: float | None = None):
        self.errors = errors
        self.retry_after = retry_after
        parts = "; ".join(f"{name}: {err}" for name, err in errors.items()) or "no candidate model"
        super().__init__(f"all providers unavailable ({parts})")


_SECRET_PATTERNS = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{8,}|(?i:x-api-key|x-goog-api-key|api[_-]?key)[\"']?\s*[:=]\s*[\"']?[^\s\"',}]{6,})"
)


def redact(text: str) -> str:
    """Replace anything shaped like an API key or bearer token with `***`."""
    return _SECRET_PATTERNS.sub("***", text)
