"""`orchestrator chat` as a user runs it: a new process, environment variables, the fake server."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.fakes.provider_server import FakeProviderServer, Script

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-chat-" + "Kk9" * 12


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL")) and not k.startswith("AI_")}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        ORCHESTRATOR_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


async def run_chat(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "chat",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_chat_streams_answer_then_reports_model_tokens_cost(
    fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    fake_provider.script(Script(chunks=["The ", "answer ", "is ", "42."], usage=(1000, 20)))
    env = clean_env(tmp_path, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=fake_provider.base_url + "/v1")
    code, out, err = await run_chat(["What is it?", "--model", "openai/gpt-6.1-terra"], env, tmp_path)
    assert code == 0, err
    assert out == "The answer is 42.\n"
    # 1000 in × $1/M + 20 out × $5/M
    assert "model: openai/gpt-6.1-terra · tokens: 1000 in / 20 out · cost: $0.001100" in err
    sent = fake_provider.requests[-1]
    assert sent.stream and sent.json["model"] == "gpt-6.1-terra"
    assert KEY not in out + err


async def test_chat_with_file_context_and_lines(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    code_file = tmp_path / "calc.py"
    code_file.write_text("import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\ndef other():\n    pass\n")
    env = clean_env(tmp_path, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake_provider.base_url)
    code, _out, err = await run_chat(["Explain", "--file", str(code_file), "--lines", "5-5"], env, tmp_path)
    assert code == 0, err
    prompt = fake_provider.requests[-1].json["messages"][0]["content"]
    assert prompt.startswith("Explain")
    assert ">5 |     return math.pi * r * r" in prompt and "4 | def area(r):" in prompt and "1 | import math" in prompt
    assert "model: anthropic/" in err


async def test_chat_without_a_provider_says_what_to_set(tmp_path: Path) -> None:
    code, out, err = await run_chat(["hello"], clean_env(tmp_path), tmp_path)
    assert code == 2 and out == ""
    assert "OPENAI_API_KEY" in err and "ANTHROPIC_API_KEY" in err and "GEMINI_API_KEY" in err
    assert "Traceback" not in err


async def test_chat_provider_failure_is_a_message(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    fake_provider.script(Script(error="auth"))
    env = clean_env(tmp_path, GEMINI_API_KEY=KEY, GEMINI_BASE_URL=fake_provider.base_url)
    code, _out, err = await run_chat(["hello"], env, tmp_path)
    assert code == 2 and "gemini answered" in err and "Traceback" not in err and KEY not in err


async def test_chat_bad_lines_and_unknown_model(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    env = clean_env(tmp_path, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=fake_provider.base_url + "/v1")
    (tmp_path / "f.py").write_text("x = 1\n")
    code, _o, err = await run_chat(["q", "--file", "f.py", "--lines", "9-3"], env, tmp_path)
    assert code == 2 and "--lines" in err
    code, _o, err = await run_chat(["q", "--model", "gpt-9000"], env, tmp_path)
    assert code == 2 and "unknown model 'gpt-9000'" in err
