"""The ``zoo`` command line: thin commands that parse, call the API, and render.

Each command group lives in its own module and registers itself on :data:`main` when imported;
:data:`main` imports a command's module only when that command runs (``_app.COMMAND_MODULES``). Errors from
:mod:`zoo.errors` become one readable message and the error's exit code (the README's table);
``--debug`` (before or after the subcommand) adds the traceback and keeps the exit code. Anything
zoo prints that came from outside (file names, tags, provenance) has its control characters
escaped, so a name cannot drive the terminal. No framework is imported here.
"""
from __future__ import annotations

from ._app import (
    Context,
    Styled,
    ZooGroup,
    console,
    emit_json,
    info,
    json_option,
    main,
    pass_ctx,
    printable,
    progress,
    table,
)

__all__ = ["Context", "Styled", "ZooGroup", "console", "emit_json", "info", "json_option", "main", "pass_ctx", "printable",
           "progress", "table"]
