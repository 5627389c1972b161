"""Harness for the language server tests (no tests here).

The real server runs as a subprocess (`python -m server.cli.lsp`, over stdio), driven by a
pytest-lsp `LanguageClient` that initializes with the captured client capabilities of VS Code
or Neovim. Its providers point at the fake provider server, which runs in the test's own
event loop; its data and config directories live under the test's tmp_path.

pytest-lsp's `@pytest_lsp.fixture` takes a `ClientServerConfig` fixed when the module is
imported, but the fake server's port is only known once it runs; so the fixture here builds
the same `ClientServerConfig` per test and starts it, with pytest-lsp's client and checks.

Nothing waits by sleeping: every notification lands in an `Inbox`, and tests wait, with a
timeout, for the first one that satisfies a predicate.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol import default_converter
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from tests.fakes.provider_server import FakeProviderServer

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-orch-" + "Lsp9" * 9
CLIENTS = {"vscode": "visual-studio-code", "neovim": "neovim"}
TIMEOUT = 30.0
CUSTOM = ("orchestrator/chatChunk", "orchestrator/chatDone", "orchestrator/status")

# A deliberately flawed module. Built-in findings: F401 `import os` (line 0, with ruff's safe
# fix), B404 (line 1), B602 shell=True (line 5), B307 eval on a line with non-ASCII text before
# it (line 16: the column differs between UTF-8, UTF-16 and code points).
FLAWED = (
    "import os\n"
    "import subprocess\n"
    "\n"
    "\n"
    "def run(cmd):\n"
    "    return subprocess.call(cmd, shell=True)\n"
    "\n"
    "\n"
    "def total(items):\n"
    "    out = 0\n"
    "    for x in items:\n"
    "        out = out + x\n"
    "    return out\n"
    "\n"
    "\n"
    "def greet(name):\n"
    '    return "héllo 👋 wörld", eval(name)\n'
)
AI_FINDING = {
    "kind": "performance",
    "severity": "warning",
    "line": 12,
    "code": "out = out + x",
    "message": "Manual accumulation in a loop; sum() says it in one call and runs faster",
    "suggestion": "return sum(items)",
}


def findings_json(*items: dict[str, Any]) -> str:
    return json.dumps({"findings": list(items)})


class Inbox:
    """Every notification the client receives, in order, and a way to wait for one."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    def add(self, method: str, params: Any) -> None:
        self.items.append((method, params))
        self._changed.set()

    def all(self, method: str) -> list[Any]:
        return [p for m, p in self.items if m == method]

    def mark(self) -> int:
        return len(self.items)

    async def wait(
        self, method: str, where: Callable[[Any], bool] = lambda _p: True, *, since: int = 0, timeout: float = TIMEOUT
    ) -> Any:
        async def first() -> Any:
            while True:
                for m, p in self.items[since:]:
                    if m == method and where(p):
                        return p
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(first(), timeout)
        except TimeoutError:
            seen = [m for m, _ in self.items[since:]]
            raise AssertionError(f"no {method} matching within {timeout}s; received since: {seen}") from None


def plain(value: Any) -> Any:
    """JSON as sent: pygls' client turns the params of unknown notifications into namedtuples."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def make_client() -> LanguageClient:
    """pytest-lsp's client with its default handlers, each also recorded in `client.inbox`;
    plus what real editors answer that pytest-lsp does not (capability registration, applyEdit)."""
    client = LanguageClient(converter_factory=default_converter)
    inbox = client.inbox = Inbox()  # type: ignore[attr-defined]
    client.applied_edits = []  # type: ignore[attr-defined]
    features = dict(DEFAULT_CLIENT_FEATURES)

    def recording(method: str, default: Callable[..., Any] | None) -> Callable[..., Any]:
        def handler(ls: LanguageClient, params: Any) -> Any:
            result = default(ls, params) if default is not None else None
            inbox.add(method, plain(params) if method in CUSTOM else params)
            return result

        return handler

    for method in (
        types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
        types.WINDOW_SHOW_MESSAGE,
        types.WINDOW_LOG_MESSAGE,
        types.PROGRESS,
        types.WORKSPACE_DIAGNOSTIC_REFRESH,
        types.WINDOW_WORK_DONE_PROGRESS_CREATE,
        *CUSTOM,
    ):
        features[method] = recording(method, features.get(method))

    def register_capability(ls: LanguageClient, params: types.RegistrationParams) -> None:
        inbox.add(types.CLIENT_REGISTER_CAPABILITY, params)

    def apply_edit(ls: LanguageClient, params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        ls.applied_edits.append(params.edit)  # type: ignore[attr-defined]
        inbox.add(types.WORKSPACE_APPLY_EDIT, params)
        return types.ApplyWorkspaceEditResult(applied=True)

    features[types.CLIENT_REGISTER_CAPABILITY] = register_capability
    features[types.WORKSPACE_APPLY_EDIT] = apply_edit
    register_lsp_features(client, features)
    return client


def capabilities(name: str) -> types.ClientCapabilities:
    """The captured capabilities, plus inline completion (VS Code 1.9x and Neovim 0.12 declare it)."""
    caps = client_capabilities(CLIENTS.get(name, name))
    assert caps.text_document is not None
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    return caps


def server_env(fake: FakeProviderServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_API_KEY", "_BASE_URL", "_DEFAULT_MODEL")) and not k.startswith(("AI_", "LOCAL_MODEL"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=fake.base_url + "/v1",
        AI_PROVIDER_PRIORITY="openai",
        ORCHESTRATOR_DATA_DIR=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
    )
    env.update(extra)
    return env


@dataclass
class Session:
    client: LanguageClient
    fake: FakeProviderServer
    root: Path
    name: str
    encoding: str
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def inbox(self) -> Inbox:
        return self.client.inbox  # type: ignore[attr-defined, no-any-return]

    def uri(self, relative: str) -> str:
        return from_fs_path(str(self.root / relative)) or ""

    def open(self, relative: str, text: str, language: str = "python") -> str:
        uri = self.uri(relative)
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
            )
        )
        return uri

    def replace(self, uri: str, text: str) -> None:
        """A full-text change (the server syncs incrementally; a change without a range is the whole text)."""
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def save(self, uri: str) -> None:
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )

    async def diagnostics(
        self, uri: str, where: Callable[[list[types.Diagnostic]], bool], *, since: int = 0
    ) -> list[types.Diagnostic]:
        params = await self.inbox.wait(
            types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, lambda p: p.uri == uri and where(list(p.diagnostics)), since=since
        )
        return list(params.diagnostics)

    async def command(self, name: str, *arguments: Any) -> Any:
        return await asyncio.wait_for(
            self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=name, arguments=list(arguments))
            ),
            TIMEOUT,
        )

    async def ready(self) -> dict[str, Any]:
        """The first status: sent once the core is built."""
        return await self.inbox.wait("orchestrator/status")  # type: ignore[no-any-return]

    def column(self, line: str, code_points: int) -> int:
        """A code point column as the negotiated encoding counts it."""
        prefix = line[:code_points]
        if self.encoding == "utf-8":
            return len(prefix.encode("utf-8"))
        if self.encoding == "utf-16":
            return len(prefix.encode("utf-16-le")) // 2
        return code_points


async def start_session(
    fake: FakeProviderServer,
    tmp_path: Path,
    name: str,
    *,
    init_options: Any = None,
    configuration: dict[str, Any] | None = None,
    caps: types.ClientCapabilities | None = None,
    **env: str,
) -> Session:
    root = tmp_path / "ws"
    (root / "app").mkdir(parents=True, exist_ok=True)
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "server.cli.lsp"],
        client_factory=make_client,
        server_env=server_env(fake, tmp_path, **env),
    )
    client = await config.start()
    assert isinstance(client, LanguageClient)
    if configuration is not None:
        client.set_configuration(configuration)
    caps = caps or capabilities(name)
    result = await asyncio.wait_for(
        client.initialize_session(
            types.InitializeParams(
                capabilities=caps,
                root_uri=from_fs_path(str(root)),
                workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(root)) or "", name="ws")],
                initialization_options=init_options,
            )
        ),
        TIMEOUT,
    )
    encoding = str(getattr(result.capabilities.position_encoding, "value", result.capabilities.position_encoding))
    return Session(client=client, fake=fake, root=root, name=name, encoding=encoding)


async def stop_session(session: Session) -> None:
    try:
        await asyncio.wait_for(session.client.shutdown_session(), TIMEOUT)
    finally:
        await session.client.stop()


def apply_edits(text: str, edits: Any, encoding: str) -> str:
    """Apply LSP text edits (positions in `encoding` units) to `text` (\\n line breaks), as an editor would."""

    def offset(pos: types.Position) -> int:
        lines = text.split("\n")
        start = sum(len(line) + 1 for line in lines[: pos.line])
        line = lines[pos.line] if pos.line < len(lines) else ""
        units = 0
        for index, char in enumerate(line):
            if units >= pos.character:
                return start + index
            if encoding == "utf-8":
                units += len(char.encode("utf-8"))
            else:
                units += 2 if encoding == "utf-16" and ord(char) > 0xFFFF else 1
        return start + len(line)

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


def arrivals(fake: FakeProviderServer) -> asyncio.Queue[str]:
    """A queue that gets each request's path as the fake starts handling it (a test-side hook)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    route = fake._route

    async def recording(request: Any) -> Any:
        queue.put_nowait(request.path)
        return await route(request)

    fake._route = recording  # type: ignore[method-assign]
    return queue


async def raw_request(client: LanguageClient, msg_id: str, method: str, params: Any) -> Any:
    """Send a request exactly as given (pygls' client would refuse to serialize malformed params)."""
    from concurrent.futures import Future

    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wait_for(asyncio.wrap_future(future), TIMEOUT)
