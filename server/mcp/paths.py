"""Roots confinement: every file a tool reads must lie inside one of the client's roots.

The client's roots arrive as `file://` URIs; a client that declares none gets the
server's default roots (the working directory unless `--root` says otherwise). A path
is refused when it leaves every root lexically (`..`, an absolute path elsewhere) or
once its symlinks are resolved (a link inside a root pointing outside it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from orchestrator.errors import InvalidInputError

MAX_FILE_BYTES = 2_000_000


class PathRefused(InvalidInputError):
    """A path outside the roots, or one that cannot be read as text."""


@dataclass(frozen=True)
class Roots:
    """Directories a tool may read, resolved (symlinks followed) once."""

    dirs: tuple[Path, ...]

    @classmethod
    def of(cls, paths: Iterable[str | os.PathLike[str]]) -> Roots:
        return cls(tuple(dict.fromkeys(Path(os.path.realpath(p)) for p in paths)))

    @classmethod
    def from_uris(cls, uris: Iterable[str], default: Roots) -> Roots:
        """The client's `file://` roots; `default` when it declared none usable."""
        dirs = [p for p in (_file_uri_path(u) for u in uris) if p is not None]
        return cls.of(dirs) if dirs else default

    def describe(self) -> str:
        return ", ".join(str(d) for d in self.dirs) or "(none)"

    def resolve(self, path: str, *, base: Path | None = None) -> Path:
        """The real path of `path` if it is inside a root, else `PathRefused`.

        A relative path is taken from `base` (default: the first root in which it exists,
        else the first root).
        """
        if not path or "\0" in path:
            raise PathRefused(f"invalid path {path!r}")
        if not self.dirs:
            raise PathRefused(
                "no roots to read from: the client declared none, and the server runs in / without --root; "
                "start it with `orchestrator mcp --root DIR`"
            )
        given = Path(os.path.expanduser(path))
        if given.is_absolute():
            candidates = [given]
        elif base is not None:
            candidates = [base / given]
        else:
            candidates = [root / given for root in self.dirs]
            candidates = [c for c in candidates if os.path.lexists(c)] or candidates[:1]
        lexical = Path(os.path.normpath(candidates[0]))
        real = Path(os.path.realpath(lexical))
        # Both checks: `..` that leaves a root, and a symlink inside a root that leads out.
        if not self.contains(lexical) and not self.contains(Path(os.path.realpath(lexical.parent)) / lexical.name):
            raise PathRefused(f"{path!r} is outside the client's roots ({self.describe()}); use a path inside them")
        if not self.contains(real):
            raise PathRefused(
                f"{path!r} resolves to {str(real)!r} through a symlink, outside the client's roots "
                f"({self.describe()}); use a path inside them"
            )
        return real

    def relative(self, real: Path) -> str:
        """How to name a file inside the roots: from its root (as `git apply` run there wants it)."""
        for root in self.dirs:
            if real.is_relative_to(root) and real != root:
                return real.relative_to(root).as_posix()
        return str(real)

    def contains(self, path: Path) -> bool:
        return any(path == root or path.is_relative_to(root) for root in self.dirs)

    def read_text(self, path: str, *, base: Path | None = None) -> tuple[Path, str]:
        """(real path, UTF-8 text) of a file inside the roots."""
        real = self.resolve(path, base=base)
        if not real.exists():
            raise PathRefused(f"{path!r}: no such file (looked in {self.describe()})")
        if not real.is_file():
            raise PathRefused(f"{path!r} is not a regular file; pass one file")
        size = real.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PathRefused(f"{path!r} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}")
        try:
            return real, real.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise PathRefused(f"{path!r} is not UTF-8 text") from None
        except OSError as exc:
            raise PathRefused(f"{path!r}: {exc.strerror}") from None


def _file_uri_path(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    path = unquote(parts.path)
    # file:///C:/x on Windows
    if len(path) > 2 and path[0] == "/" and path[2] == ":":
        path = path[1:]
    return path or None


def default_roots(paths: Sequence[str | os.PathLike[str]] | None) -> Roots:
    """`paths`, else the working directory; never the whole file system by accident (a client
    that starts servers in `/` must pass `--root`)."""
    if paths:
        return Roots.of(paths)
    cwd = Path.cwd()
    return Roots(()) if cwd.parent == cwd else Roots.of([cwd])
