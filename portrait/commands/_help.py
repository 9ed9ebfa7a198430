"""Help texts shown as written: portrait's help is plain text, not rich markup.

typer renders help with rich markup, which has two surprises for plain prose:
``[values]`` or ``[a|b]`` is taken for a style tag and vanishes, and every paragraph
after the first keeps the docstring's hard line breaks, so a wrapped docstring shows
as ragged half-lines. ``plain_help(app)`` (called once by ``portrait/cli.py``) escapes
the markup of every command's and parameter's help and joins each paragraph into one
line that rich wraps at the terminal's width. A paragraph starting with ``\\b`` (click's
"do not rewrap" marker) keeps its line breaks.
"""

from __future__ import annotations

import inspect

import typer
from rich.markup import escape


def reflow(text: str) -> str:
    """``text`` with each blank-line separated paragraph on one line (``\\b`` paragraphs kept)."""
    text = inspect.cleandoc(text).partition("\f")[0]  # after \f: for the code reader, not the help
    paragraphs = [p.strip("\n") for p in text.split("\n\n")]
    out = [p[1:].lstrip("\n") if p.startswith("\b") else " ".join(line.strip() for line in p.splitlines())
           for p in paragraphs]
    return "\n\n".join(p for p in out if p)


def _params(callback) -> list:
    """The typer.Option/Argument objects declared as ``callback``'s defaults."""
    if callback is None:
        return []
    return [p.default for p in inspect.signature(callback).parameters.values()
            if isinstance(p.default, typer.models.ParameterInfo)]


def plain_help(app: typer.Typer) -> None:
    """Escape rich markup in, and reflow, the help of ``app``'s commands, groups and parameters.

    Runs once per app (a second call would escape the escapes): the app is marked when done.
    """
    if getattr(app, "_portrait_plain_help", False):
        return
    app._portrait_plain_help = True  # type: ignore[attr-defined]
    if isinstance(app.info.help, str):
        app.info.help = escape(reflow(app.info.help))
    infos = [*app.registered_commands, *(g for g in app.registered_groups)]
    for info in infos:
        if isinstance(info, typer.models.TyperInfo):
            if isinstance(info.help, str):
                info.help = escape(reflow(info.help))
            if info.typer_instance is not None:
                plain_help(info.typer_instance)
            continue
        doc = info.help if isinstance(info.help, str) else inspect.getdoc(info.callback)
        if doc:
            info.help = escape(reflow(doc))
        for param in _params(info.callback):
            if isinstance(param.help, str):
                param.help = escape(param.help)
