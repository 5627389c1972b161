"""The language server's pure parts: position conversion and editor configuration."""

from __future__ import annotations

import pytest
from lsprotocol import types

from server.lsp import config
from server.lsp.positions import from_client, offset_at, position_to_client, split_lines, to_client

LINE = 'x = "é👋z"'  # é: 1 UTF-16 unit, 2 UTF-8 bytes; 👋: 2 UTF-16 units, 4 UTF-8 bytes


@pytest.mark.parametrize(
    ("encoding", "columns"),
    [
        ("utf-16", [0, 5, 6, 8, 9, 10]),
        ("utf-8", [0, 5, 7, 11, 12, 13]),
        ("utf-32", [0, 5, 6, 7, 8, 9]),
    ],
)
def test_code_points_to_client_units_and_back(encoding: str, columns: list[int]) -> None:
    points = [0, 5, 6, 7, 8, 9]
    assert [to_client(LINE, p, encoding) for p in points] == columns
    assert [from_client(LINE, c, encoding) for c in columns] == points


def test_a_column_inside_a_character_or_past_the_end_is_clamped() -> None:
    assert from_client(LINE, 7, "utf-16") == 6  # the second unit of 👋 is 👋
    assert from_client(LINE, 99, "utf-8") == len(LINE)
    assert to_client(LINE, 99, "utf-16") == 10


def test_lines_split_as_lsp_counts_them() -> None:
    assert split_lines("a\r\nb\rc\nd\x0ce") == ["a", "b", "c", "d\x0ce"]  # a form feed is no line break
    lines = split_lines("a\nb")
    assert position_to_client(lines, 7, 3, "utf-16") == types.Position(line=1, character=1)


def test_offset_of_a_position() -> None:
    text = "ab\r\n" + LINE + "\nlast"
    assert offset_at(text, types.Position(line=1, character=8), "utf-16") == 4 + 7
    assert offset_at(text, types.Position(line=2, character=2), "utf-8") == len(text) - 2
    assert offset_at(text, types.Position(line=9, character=0), "utf-8") == len(text)


def test_configuration_values_are_checked_one_by_one() -> None:
    cfg, warnings = config.parse(
        config.merge(
            {"orchestrator": {"profile": "speed", "analysisKinds": ["security", "bogus"], "maxFileKb": 64}},
            {"orchestrator": {"inlineCompletion": {"enabled": "yes"}, "colour": "blue", "monthlyBudget": 5}},
        )
    )
    assert cfg.profile == "speed" and cfg.max_file_kb == 64
    assert cfg.analysis_kinds is None and cfg.inline_enabled is True  # the defaults (None: the core's)
    assert cfg.core == {"budget": {"monthly_usd": 5}}
    assert len(warnings) == 3
    assert any("analysisKinds" in w and "bogus" in w for w in warnings)
    assert any("inlineCompletion.enabled" in w for w in warnings)
    assert any("colour" in w and "unknown" in w for w in warnings)


def test_later_layers_win_and_nested_tables_merge() -> None:
    merged = config.merge(
        {"settings": {"routing": {"profile": "quality"}, "cache": {"enabled": False}}},
        {"orchestrator": {"settings": {"routing": {"profile": "speed"}}}},
    )
    assert merged == {"settings": {"routing": {"profile": "speed"}, "cache": {"enabled": False}}}


def test_drop_removes_a_bad_key_or_its_nearest_parent() -> None:
    core = {"cache": {"ttl": 5, "enabled": True}, "budget": {"monthly_usd": -1}}
    assert config.drop(core, "cache.ttl") and core["cache"] == {"enabled": True}
    assert config.drop(core, "budget.monthly_usd.value") and core["budget"] == {}
    assert not config.drop(core, "routing.profile")
