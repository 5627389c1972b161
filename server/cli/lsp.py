"""`orchestrator lsp`: the language server, on stdio (what editors start) or `--tcp HOST:PORT`.

stdout is the protocol channel: before serving, file descriptor 1 is moved to a private
descriptor for the protocol and pointed at stderr, so a stray `print` (ours, a library's,
a child process's) lands in the log instead of corrupting the stream.

Also runnable as `python -m server.cli.lsp [--tcp HOST:PORT]`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, BinaryIO


def add_parser(sub: Any) -> None:
    p = sub.add_parser("lsp", help="run the language server (stdio; --tcp for a socket)")
    _arguments(p)
    p.set_defaults(handler=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        type=_host_port,
        help="listen on a TCP socket instead of stdio, e.g. 127.0.0.1:2087 (port 0: any free port, logged)",
    )


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 127.0.0.1:2087, got {value!r}")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace) -> int:
    from server.lsp.server import create_server

    server = create_server()
    if args.tcp is not None:
        host, port = args.tcp
        server.serve_tcp(host, port)
        return 0
    stdin, stdout = sys.stdin.buffer, _protocol_stdout()
    server.serve_stdio(stdin, stdout)
    return 0


def _protocol_stdout() -> BinaryIO:
    """A private copy of stdout for the protocol; fd 1 and `sys.stdout` then write to stderr."""
    sys.stdout.flush()
    try:
        fd = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no real descriptors (embedded, some test harnesses): keep the plain stream
        out = sys.stdout.buffer
        sys.stdout = sys.stderr
        return out
    sys.stdout = sys.stderr
    return os.fdopen(fd, "wb")


if __name__ == "__main__":
    # `python -m server.cli.lsp ...` is `orchestrator lsp ...`: one parser, one error handling.
    from server.cli import main

    sys.exit(main(["lsp", *sys.argv[1:]]))
