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
    rest = b""
    event = ""
    data: list[bytes] = []
    async for piece in body.iter_any():
        # One split per network read: the last piece may be a partial line, kept for the next.
        lines = (rest + piece).split(b"\n") if rest else piece.split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line[-1:] == b"\r":
                line = line[:-1]
            if not line:
                if data:
                    raw = data[0] if len(data) == 1 else b"\n".join(data)
                    yield Event(event or "message", raw.decode("utf-8", errors="replace"))
                    data = []
                event = ""
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line.startswith(b"event:"):
                event = (line[7:] if line[6:7] == b" " else line[6:]).decode("utf-8", errors="replace")
            # Anything else is a comment (":" keep-alive), an id or retry field: not used here.
        if len(rest) > MAX_EVENT_BYTES:
            raise SSEError(f"an SSE line longer than {MAX_EVENT_BYTES} bytes")
    # Some servers end the body right after the last data line, without the blank line.
    line = rest.rstrip(b"\r\n")
    if line.startswith(b"data:"):
        data.append(line[6:] if line[5:6] == b" " else line[5:])
    if data:
        yield Event(event or "message", b"\n".join(data).decode("utf-8", errors="replace"))
