"""Prompts: a code review and a security audit, each a plan that uses the server's tools."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

Target = Annotated[str, Field(description="file, directory or git range to examine")]


def code_review(target: Target, focus: Annotated[str, Field(description="what matters most")] = "") -> str:
    """Review code for bugs, performance, style and tests."""
    extra = f" Pay most attention to: {focus}." if focus else ""
    return (
        f"Review {target}.{extra}\n"
        "1. For a git range, call review_diff with `revs`; otherwise call analyze_code on each file "
        "(profile balanced).\n"
        "2. Read the code around every finding and drop the ones that are wrong; say why.\n"
        "3. For each remaining finding give severity, file:lines, the problem and why it matters. Use its "
        "`fix` diff when it has one, else call fix for a diff.\n"
        "4. End with the three changes worth making first. Change no file unless asked."
    )


def security_audit(target: Target) -> str:
    """Audit code for security problems."""
    return (
        f"Audit {target} for security problems.\n"
        '1. Call analyze_code on each file (or review_diff for a git range) with kinds ["security"] and '
        "consensus true.\n"
        "2. Then look yourself for what analyzers miss: injection (SQL, shell, template), unsafe "
        "deserialization, path traversal, SSRF, missing authorization, secrets in code or logs, weak crypto, "
        "unsafe defaults.\n"
        "3. For each problem give file:lines, how an attacker would use it, its severity, and a fix (call fix "
        "for a diff).\n"
        "4. Never print a secret you find; name its file and line. Change no file unless asked."
    )


def register(server: MCPServer[Any]) -> None:
    server.prompt()(code_review)
    server.prompt()(security_audit)
