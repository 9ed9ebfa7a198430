"""`--help` shows every help text as written: [brackets] kept, paragraphs wrapped cleanly."""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from portrait.cli import app
from portrait.commands._help import plain_help

runner = CliRunner()


def _help(args: list[str], width: int = 80) -> str:
    res = runner.invoke(app, [*args, "--help"], env={"COLUMNS": str(width)})
    assert res.exit_code == 0, res.output
    return res.output


def _flat(text: str) -> str:
    """Rendered help without the panels' borders and the wrapping."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text)).strip()


def _commands(cmd, path):
    yield path, cmd
    if hasattr(cmd, "list_commands"):
        ctx = cmd.make_context("portrait", [], resilient_parsing=True)
        for name in cmd.list_commands(ctx):
            yield from _commands(cmd.get_command(ctx, name), [*path, name])


def test_bracketed_help_text_is_shown():
    assert "({column: [values]})" in _flat(_help(["features", "online"], width=200))
    assert "one_id[, score, percentile]" in _flat(_help(["audience", "export"], width=200))


def test_every_bracket_in_every_help_text_is_shown():
    seen = 0
    for path, cmd in _commands(typer.main.get_command(app), []):
        texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
        wanted = [m.replace("\\[", "[") for t in texts for m in re.findall(r"\\?\[[^\]]*\]", t)]
        if wanted:
            shown = _flat(_help(path, width=400)).replace(" ", "")
            assert [w for w in wanted if w.replace(" ", "") not in shown] == [], path
            seen += len(wanted)
    assert seen >= 2


def test_paragraphs_after_the_first_are_rewrapped_not_ragged():
    out = _help(["data", "import"])
    lines = [ln.rstrip() for ln in out.splitlines()]
    start = next(i for i, ln in enumerate(lines) if "The file's rows replace" in ln)
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    paragraph = lines[start:end]
    assert len(paragraph) >= 5 and all(len(ln) <= 80 for ln in paragraph)
    assert all(len(ln) >= 60 for ln in paragraph[:-1]), "\n".join(paragraph)  # a hard-wrapped docstring leaves stubs
    assert "and the rows of other sources are kept" in _flat("\n".join(paragraph))


def test_plain_help_keeps_markup_like_text_and_unwrap_marked_paragraphs():
    tiny = typer.Typer()

    @tiny.command()
    def pick(mode: str = typer.Option("a", help="One of [a|b] or [bold]x[/bold].")) -> None:
        """Pick a mode [a|b].

        A long paragraph that
        was wrapped by hand.

        \b
        kept: line one
        kept: line two
        """

    @tiny.command()
    def other() -> None:
        """Another command."""

    plain_help(tiny)
    plain_help(tiny)  # a second call escapes nothing twice
    res = runner.invoke(tiny, ["pick", "--help"], env={"COLUMNS": "100"})
    flat = _flat(res.output)
    assert "Pick a mode [a|b]." in flat and "One of [a|b] or [bold]x[/bold]." in flat
    assert "A long paragraph that was wrapped by hand." in res.output
    lines = [ln.strip() for ln in res.output.splitlines()]
    assert lines[lines.index("kept: line one") + 1] == "kept: line two"
