"""The MCP server's pure parts: unified diffs in and out, roots, and schema compaction."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import InvalidInputError
from orchestrator.types import Range, TextEdit
from server.mcp import diff
from server.mcp.paths import PathRefused, Roots
from server.mcp.schema import compact, inline_defs

GIT_DIFF = """\
diff --git a/pkg/a.py b/pkg/a.py
index 1111111..2222222 100644
--- a/pkg/a.py
+++ b/pkg/a.py
@@ -1,4 +1,5 @@
 import os
+import sys
 
 def f():
-    return 1
+    return 2
@@ -20,2 +21,0 @@ def g():
--- a comment line that starts like a header
-    pass
diff --git a/new.py b/new.py
new file mode 100644
--- /dev/null
+++ b/new.py
@@ -0,0 +1,2 @@
+x = 1
+y = 2
\\ No newline at end of file
diff --git a/gone.py b/gone.py
deleted file mode 100644
--- a/gone.py
+++ /dev/null
@@ -1 +0,0 @@
-z = 3
"""


def test_parse_git_diff() -> None:
    a, new, gone = diff.parse(GIT_DIFF)
    assert (a.path, sorted(a.added), a.deleted) == ("pkg/a.py", [2, 5], False)
    assert a.shown == {1: "import os", 2: "import sys", 3: "", 4: "def f():", 5: "    return 2"}
    assert (new.path, sorted(new.added)) == ("new.py", [1, 2])
    assert (gone.path, gone.added, gone.deleted) == ("gone.py", set(), True)
    assert diff.sketch(new) == "x = 1\ny = 2\n"
    assert diff.sketch(a).splitlines()[1] == "import sys"


def test_parse_refuses_text_without_headers() -> None:
    with pytest.raises(InvalidInputError, match="no file headers"):
        diff.parse("@@ -1 +1 @@\n-a\n+b\n")


def test_touches_changed_lines() -> None:
    assert diff.touches({5}, Range.lines(4))  # 0-based line 4 is line 5
    assert diff.touches({5, 9}, Range.of(6, 0, 8, 3))
    assert not diff.touches({5}, Range.of(5, 0, 7, 0))


@pytest.mark.parametrize("final_newline", [True, False])
def test_edits_diff_applies_with_git(tmp_path: Path, final_newline: bool) -> None:
    text = "".join(f"line {i}\n" for i in range(40))
    if not final_newline:
        text = text.rstrip("\n")
    edits = [
        TextEdit(range=Range.of(20, 0, 22, 0), new_text="replaced\n"),
        TextEdit(range=Range.of(39, 0, 39, 7), new_text="last"),
    ]
    patch = diff.edits_diff("dir/f.txt", text, edits)
    assert patch.startswith("--- a/dir/f.txt\n+++ b/dir/f.txt\n@@ -18,")
    assert "line 3\n" not in patch  # only the lines around the edits
    assert ("\\ No newline at end of file" in patch) is not final_newline
    expected = diff.apply_edits(text, edits)
    assert expected.count("replaced") == 1 and "line 21" not in expected
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the diff's text was checked, not applied")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f.txt").write_text(text)
    subprocess.run(["git", "apply", "-"], input=patch, text=True, cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "dir" / "f.txt").read_text() == expected


def test_unified_of_equal_texts_is_empty() -> None:
    assert diff.unified("f", "a\n", "a\n") == ""
    assert diff.edits_diff("f", "a\n", []) == ""


def test_roots_from_uris(tmp_path: Path) -> None:
    (tmp_path / "my project").mkdir()
    default = Roots.of([tmp_path])
    given = Roots.from_uris(["https://example.com/repo", (tmp_path / "my project").as_uri()], default)
    assert given.dirs == (tmp_path.resolve() / "my project",)
    assert Roots.from_uris(["https://example.com/repo"], default) is default
    assert Roots.from_uris([], default) is default
    with pytest.raises(PathRefused, match="invalid path"):
        given.resolve("a\0b")
    with pytest.raises(PathRefused, match="outside"):
        given.resolve("~/.ssh/id_rsa")


def test_compact_schema() -> None:
    schema = {
        "title": "Args",
        "type": "object",
        "properties": {
            "title": {"title": "Title", "type": "string"},
            "path": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Path"},
            "count": {"default": 3, "type": "integer"},
        },
    }
    assert compact(schema, result=False) == {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "path": {"type": "string"},
            "count": {"default": 3, "type": "integer"},
        },
    }
    assert compact(schema)["properties"]["path"] == {"type": ["string", "null"]}
    assert "default" not in compact(schema)["properties"]["count"]  # results: defaults say nothing
    assert "required" not in compact({**schema, "required": ["title"]})
    assert compact({**schema, "required": ["title"]}, result=False)["required"] == ["title"]
    nested = {
        "$defs": {"Item": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
    }
    assert inline_defs(nested) == {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer"}}}}
        },
    }


def test_the_file_system_root_is_never_a_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from server.mcp.paths import default_roots

    monkeypatch.chdir("/")
    with pytest.raises(PathRefused, match="--root"):
        default_roots(None).resolve("etc/passwd")
    assert default_roots(["/"]).dirs == (Path("/"),)  # said explicitly: allowed
    monkeypatch.chdir(tmp_path)
    assert default_roots(None).dirs == (tmp_path.resolve(),)
