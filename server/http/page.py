"""`GET /`: the usage page. One static HTML file and one script, no build step.

The shell holds no data, so it is served without a key; the script reads the key from the
URL fragment (`/#key=...`, never sent to the server) or asks for it, keeps it in the
browser's localStorage, and draws `GET /api/ai/usage/details`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

INDEX = Path(__file__).parent / "static" / "index.html"
HEADERS = {
    # Only our own script and styles; no inline code, no third-party anything.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _index() -> bytes:
    return INDEX.read_bytes()


async def index(request: Request) -> Response:
    return Response(_index(), media_type="text/html", headers=HEADERS)
