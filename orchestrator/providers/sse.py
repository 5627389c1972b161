"""Server-sent events over an aiohttp response body.

The parser works on raw bytes as they arrive, so an event split across TCP writes (or a
line split in the middle) is reassembled; it accepts `\\n` and `\\r\\n` line ends
(Gemini uses `\\r\\n`). A last event not followed by a blank line is still dispatched
(some servers omit it): whether a stream ended properly is for each provider to judge
from its own terminator ([DONE], message_stop, a finishReason).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import StreamReader

# A single event larger than this is not a model's answer chunk; refuse rather than grow.
MAX_EVENT_BYTES = 8 * 1024 * 1024


@dataclass(slots=True)
class Event:
    event: str
    data: str


class SSEError(ValueError):
    pass


async def iter_events(body: StreamReader) -> AsyncIterator[Event]:
    buffer = b""
    event = ""
    data: list[bytes] = []
    async for piece in body.iter_any():
        buffer = buffer + piece if buffer else piece
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = buffer[start:end]
            start = end + 1
            if line[-1:] == b"\r":
                line = line[:-1]
            if not line:
                if data:
                    yield Event(event or "message", b"\n".join(data).decode("utf-8", errors="replace"))
                event, data = "", []
                continue
            if line[:1] == b":":
                continue  # comment / keep-alive
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value.decode("utf-8", errors="replace")
        buffer = buffer[start:] if start else buffer
        if len(buffer) > MAX_EVENT_BYTES:
            raise SSEError(f"an SSE line longer than {MAX_EVENT_BYTES} bytes")
    # Some servers end the body right after the last data line, without the blank line.
    line = buffer.rstrip(b"\r\n")
    if line.startswith(b"data:"):
        value = line[5:]
        data.append(value[1:] if value[:1] == b" " else value)
    if data:
        yield Event(event or "message", b"\n".join(data).decode("utf-8", errors="replace"))
