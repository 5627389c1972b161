"""The language server: a pygls `LanguageServer` that holds one `Orchestrator`.

The core is imported and built only after `initialize` has been answered (in a worker
thread, so the event loop keeps reading messages meanwhile): an editor waits for
`initialize` before it shows anything. Every feature module registers its handlers with
`register(ls)`; this module holds what they share: documents, the facade, progress,
errors, messages.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import itertools
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from .config import KINDS, EditorConfig, core_settings
from .protocol import OrchestratorProtocol, Unfit, value_of

if TYPE_CHECKING:
    from orchestrator.core import Orchestrator
    from orchestrator.types import Document

    from .chat import Chats
    from .diagnostics import Diagnostics
    from .inline_completion import InlineCompletions
    from .status import Status

log = logging.getLogger(__name__)
T = TypeVar("T")

VERSION = "0.1.0"
_TOKENS = itertools.count(1)
_LANGUAGES = {".py": "python", ".pyi": "python", ".js": "javascript", ".ts": "typescript", ".go": "go", ".rs": "rust"}


class OrchestratorServer(LanguageServer):
    diagnostics: Diagnostics
    completions: InlineCompletions
    chats: Chats
    status: Status

    def __init__(self) -> None:
        super().__init__(
            "orchestrator",
            VERSION,
            protocol_cls=OrchestratorProtocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.config = EditorConfig()
        self.profile_override: str | None = None  # orchestrator.setProfile; cleared by a configuration change
        self.pull_diagnostics = False
        self._orch_task: asyncio.Task[Orchestrator] | None = None
        self._orch: Orchestrator | None = None
        self._core_key: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- capabilities --------------------------------------------------------------------

    def supports(self, dotted: str, default: Any = None) -> Any:
        caps = getattr(self.protocol, "client_capabilities", None)
        return default if caps is None else get_capability(caps, dotted, default)

    def adjust_capabilities(self, caps: types.ServerCapabilities) -> None:
        """Pull diagnostics only for clients that can also be told to pull again when AI
        results arrive later (`workspace/diagnostic/refresh`); the others get pushes and
        no pull provider, so no client shows the same diagnostic twice. The handler still
        answers a pull from anyone."""
        self.pull_diagnostics = bool(
            self.supports("text_document.diagnostic") and self.supports("workspace.diagnostics.refresh_support")
        )
        if not self.pull_diagnostics:
            caps.diagnostic_provider = None
        caps.experimental = {
            "orchestrator": {
                "notifications": ["orchestrator/chatChunk", "orchestrator/chatDone", "orchestrator/status"],
            }
        }

    @property
    def encoding(self) -> str:
        """The negotiated position encoding: "utf-8", "utf-16" or "utf-32"."""
        return value_of(self.workspace.position_encoding or types.PositionEncodingKind.Utf16)

    # -- the facade ----------------------------------------------------------------------

    @property
    def profile(self) -> str | None:
        """The profile of the next call; None leaves it to the core's settings."""
        return self.profile_override or self.config.profile

    @property
    def ai_mode(self) -> str:
        if self.config.ai_diagnostics is not None:
            return self.config.ai_diagnostics
        return self._orch.settings.analysis.ai_mode if self._orch is not None else "save"

    @property
    def kinds(self) -> list[str]:
        if self.config.analysis_kinds is not None:
            return list(self.config.analysis_kinds)
        if self._orch is not None:
            return [k.value for k in self._orch.settings.analysis.kinds]
        return list(KINDS)

    def start_core(self) -> None:
        """Build the facade in the background (after `initialized`, or when the core's settings change)."""
        key = repr(sorted(_flat(self.config.core)))
        if self._orch_task is not None and key == self._core_key:
            return
        self._core_key = key
        previous = self._orch_task
        self._orch_task = asyncio.ensure_future(self._create(copy.deepcopy(self.config.core), previous))
        self._orch_task.add_done_callback(self._core_started)

    def _core_started(self, task: asyncio.Task[Orchestrator]) -> None:
        if not task.cancelled() and task.exception() is not None:  # retrieved here, said once
            exc = task.exception()
            log.error("the core did not start: %s", exc, exc_info=exc)
            self.show(f"Orchestrator could not start: {_describe(exc)}", types.MessageType.Error)

    async def orchestrator(self) -> Orchestrator:
        if self._orch_task is None:
            self.start_core()
        assert self._orch_task is not None
        task = self._orch_task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled() and self._orch_task is not task:
                return await self.orchestrator()  # replaced by a newer configuration
            raise
        except Exception:
            if self._orch_task is task:
                self._orch_task = None  # the next call tries again
            raise

    @property
    def ready(self) -> Orchestrator | None:
        return self._orch

    async def _create(self, core: dict[str, Any], previous: asyncio.Task[Orchestrator] | None) -> Orchestrator:
        # Importing the core takes a few hundred ms of CPU: a worker thread keeps the loop answering.
        core_mod = await asyncio.to_thread(importlib.import_module, "orchestrator.core")
        settings, warnings = await asyncio.to_thread(core_settings, core, self.root_path())
        for warning in warnings:
            self.show(warning, types.MessageType.Warning)
        orch = await core_mod.Orchestrator.create(settings, front_end="lsp")
        orch.add_listener(self.status.on_alert)
        old, self._orch = self._orch, orch
        if previous is not None and not previous.done():
            previous.cancel()
        if old is not None:
            self.spawn(old.close())
        self.status.changed()
        return orch

    # -- serving -------------------------------------------------------------------------
    # pygls' start_io/start_tcp, with one addition: the core is closed however the session
    # ends (`shutdown`, `exit`, end of input). Its SQLite connections run in non-daemon
    # threads; left open, they would keep the process alive after the editor has gone.

    def serve_stdio(self, stdin: BinaryIO, stdout: BinaryIO) -> None:
        self._stop_event = threading.Event()
        reader = StdinAsyncReader(stdin, self.thread_pool)
        self.protocol.set_writer(StdoutWriter(stdout))
        try:
            asyncio.run(self._serve(reader))
        except BrokenPipeError:
            log.error("the client closed the connection")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self._stop_reading()

    def serve_tcp(self, host: str, port: int) -> None:
        self._stop_event = threading.Event()
        done = asyncio.Event()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.protocol.set_writer(writer)  # type: ignore[arg-type]
            try:
                await self._serve(reader)
            finally:
                done.set()

        async def main() -> None:
            server = await asyncio.start_server(connection, host, port)
            self._server = server
            bound = ", ".join(f"{sock.getsockname()[0]}:{sock.getsockname()[1]}" for sock in server.sockets)
            log.warning("orchestrator lsp listening on %s", bound)  # port 0: this says which port
            async with server:
                await done.wait()  # one editor, one session: the server ends with it

        try:
            asyncio.run(main())
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self._stop_reading()

    async def _serve(self, reader: Any) -> None:
        assert self._stop_event is not None
        try:
            await run_async(
                stop_event=self._stop_event,
                reader=reader,
                protocol=self.protocol,
                logger=log,
                error_handler=self.report_server_error,
            )
        finally:
            await self.close_core()

    def _stop_reading(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()
        if self._thread_pool is not None:
            # The reader thread may still be blocked on stdin: do not wait for it.
            self._thread_pool.shutdown(wait=False, cancel_futures=True)

    async def close_core(self) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        if self._orch_task is not None and not self._orch_task.done():
            tasks.append(self._orch_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._orch is not None:
            orch, self._orch = self._orch, None
            await orch.close()

    # -- documents -----------------------------------------------------------------------

    def root_path(self) -> str | None:
        try:
            root = self.workspace.root_path
        except RuntimeError:
            return None
        return root if root and os.path.isdir(root) else None

    def opened(self, uri: str) -> TextDocument | None:
        docs = self.workspace.text_documents
        return docs.get(uri) or docs.get(unquote(uri))  # pygls keys documents by the unquoted URI

    def document(self, uri: str) -> TextDocument:
        """An open document; a URI the client never opened is an error (never read from disk)."""
        if not isinstance(uri, str) or not uri:
            raise JsonRpcInvalidParams("a document URI is required")
        doc = self.opened(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"document not open: {uri} (send textDocument/didOpen first)")
        return doc

    def check(self, doc: TextDocument) -> None:
        """Raise `Unfit` for a document the analyzers must not be given."""
        text = doc.source
        limit = self.config.max_file_kb * 1024
        if len(text) > limit:
            raise Unfit(
                f"{_name(doc.uri)} is {len(text) / 1_048_576:.1f} MB, over orchestrator.maxFileKb "
                f"({self.config.max_file_kb} KB): not analyzed"
            )
        if "\x00" in text:
            raise Unfit(f"{_name(doc.uri)} looks binary (it has NUL characters): not analyzed")

    def core_document(self, doc: TextDocument, *, text: str | None = None) -> Document:
        from orchestrator.types import Document

        path = to_fs_path(doc.uri) or doc.uri
        language = doc.language_id or _LANGUAGES.get(Path(path).suffix, "plaintext")
        return Document(path=path, text=doc.source if text is None else text, language=language)

    # -- messages, progress, tasks -------------------------------------------------------

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.protocol.notify(method, params)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """A background task that is kept alive, and whose failure is logged, never lost."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("background task failed: %s", exc, exc_info=exc)
            self.show(f"Orchestrator: {_describe(exc)}", types.MessageType.Error)

    @asynccontextmanager
    async def progress(
        self, title: str, *, token: types.ProgressToken | None = None, cancellable: bool = False
    ) -> AsyncIterator[Callable[[str], None]]:
        """Work-done progress around a model call: the client's token when it sent one, else
        one we create when the client supports it. With `cancellable`, the client's cancel
        cancels the task that runs this block."""
        wdp = self.work_done_progress
        if token is None and self.supports("window.work_done_progress", False):
            token = f"orchestrator-{next(_TOKENS)}"
            try:
                await asyncio.wait_for(wdp.create_async(token), 5.0)
            except (TimeoutError, JsonRpcException, RuntimeError) as exc:
                log.debug("no progress: %s", exc)
                token = None
        if token is None:
            yield lambda _message: None
            return
        wdp.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=cancellable))
        task = asyncio.current_task()
        cancel = wdp.tokens.get(token)
        active = True

        def on_cancel(fut: Any) -> None:  # a concurrent Future: no remove_done_callback, hence `active`
            if active and fut.cancelled() and task is not None:
                task.get_loop().call_soon_threadsafe(task.cancel)

        if cancellable and cancel is not None:
            cancel.add_done_callback(on_cancel)
        outcome = "cancelled"
        try:
            yield lambda message: wdp.report(token, types.WorkDoneProgressReport(message=message))
            outcome = "done"
        except asyncio.CancelledError:
            raise
        except Exception:
            outcome = "failed"
            raise
        finally:
            active = False
            wdp.tokens.pop(token, None)
            wdp.end(token, types.WorkDoneProgressEnd(message=outcome))


def _describe(exc: BaseException | None) -> str:
    return str(exc) if exc is not None and str(exc) else type(exc).__name__


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1] or uri


def _flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", repr(value)))
    return out


def create_server() -> OrchestratorServer:
    """A server with every feature registered."""
    from . import chat, code_actions, commands, config, diagnostics, inline_completion, status

    ls = OrchestratorServer()
    for module in (status, config, diagnostics, code_actions, inline_completion, chat, commands):
        module.register(ls)

    @ls.feature(types.SHUTDOWN)
    async def shutdown(params: None) -> None:
        await ls.close_core()  # flushes the ledger; the SQLite threads end with it

    return ls
