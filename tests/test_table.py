"""Terminal tables (zoo.cli._table): alignment, markup, wide characters, folding, pipes."""
from __future__ import annotations

import io

from rich.cells import cell_len

from zoo.cli import table
from zoo.cli._table import Styled, print_table, render

COLUMNS = ["ref", "params", "status"]
RIGHT = [False, True, False]


def _widths(text: str) -> set[int]:
    return {cell_len(line) for line in text.splitlines()[:-1] if line.startswith(("┏", "┃", "┡", "│", "└"))}


def test_columns_align_and_numbers_right_justify():
    out = render("models", COLUMNS, [["a@1", "1,930", "ok"], ["longer-name@12", "25,557,032", "-"]], right=RIGHT,
                 caption="one line\nand another")
    lines = out.splitlines()
    assert lines[0].strip() == "models" and [ln.strip() for ln in lines[-2:]] == ["one line", "and another"]
    assert len(_widths(out)) == 1, out
    row = next(ln for ln in lines if ln.startswith("│ a@1"))
    assert "│      1,930 │" in row, "numbers end at the column's right edge"


def test_brackets_in_values_print_as_they_are_and_only_styled_cells_colour():
    plain = render(None, COLUMNS, [["[red]x[/]", "[1]", Styled("[bold red]CORRUPT[/] [tensorflow]")]], right=RIGHT)
    assert "[red]x[/]" in plain and "[1]" in plain, "a value's brackets are text"
    assert "CORRUPT [tensorflow]" in plain and "\x1b" not in plain, "no colour: the known tags go, other brackets stay"
    coloured = render(None, COLUMNS, [["x", "1", Styled("[green]ok[/]")]], right=RIGHT, colour=True)
    assert "\x1b[32mok\x1b[0m" in coloured and "[green]" not in coloured
    assert len({cell_len(_strip_ansi(ln)) for ln in coloured.splitlines()}) == 1, "escapes take no width"


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_wide_characters_and_multi_line_cells_keep_the_box_square():
    out = render(None, COLUMNS, [["猫@1", "3", "ok\nhint: two lines"], ["e\u0301@2", "4", "-"]], right=RIGHT)
    assert len(_widths(out)) == 1, out
    assert sum(1 for ln in out.splitlines() if ln.startswith("│")) == 3, "the two-line cell makes its row two lines high"


def test_a_narrow_terminal_folds_the_widest_column_and_loses_nothing():
    long = "x" * 120
    out = render(None, COLUMNS, [["a@1", "1", long]], right=RIGHT, width=60)
    assert max(_widths(out)) <= 60, out
    assert "".join(ln.split("│")[3].strip() for ln in out.splitlines() if ln.startswith("│")) == long
    assert "ref" in out and "params" in out, "headers are never folded"


def test_pipes_get_whole_lines_and_no_colour(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = io.StringIO()
    print_table(stream, None, COLUMNS, [["a@1", "1", Styled("[green]ok[/]")]], right=RIGHT)
    text = stream.getvalue()
    assert "\x1b" not in text and "│ a@1 │" in text


def test_table_escapes_control_characters_and_dashes_none(capsys):
    table("t", ["ref", "size"], [["evil\x1b[2Jname", None]])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "evil\\x1b[2Jname" in out
    assert "│    - │" in out, "None prints as a dash (right-aligned: a size)"
