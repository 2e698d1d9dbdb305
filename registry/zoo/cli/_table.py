"""Tables for the terminal: rich's look (a heavy-headed box), drawn in one pass.

rich measures and wraps every cell as a renderable: about 1.8 ms a row, 18 s for `zoo list` over a
10,000-version registry. This draws the same box with string joins (0.9 s for those 10,000 rows).

Invariant: cells arrive as printable text (the caller escapes control characters); markup is
read only in :class:`Styled` cells, limited to the tags of ``_ANSI`` and ``[/]`` (other brackets
print as they are), and becomes colour on a colour terminal (stdout a TTY, ``NO_COLOR`` unset,
``TERM`` not ``dumb``), nothing elsewhere. On a terminal a table wider than the window has its
widest columns folded to fit; pipes and files get every line whole, so that ``grep`` sees whole
rows.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

_ANSI = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "yellow": "33", "bold red": "1;31",
         "bold green": "1;32"}
_TAG = re.compile(r"\[/\]|\[(" + "|".join(map(re.escape, sorted(_ANSI, key=len, reverse=True))) + r")\]")
_MIN_FOLD = 8  # a folded column keeps at least this many cells


class Styled(str):
    """A table cell whose markup is meant (``Styled("[green]ok[/]")``); other cells print as they are."""


def _cell_len(text: str) -> int:
    from rich.cells import cell_len  # East Asian wide characters take two cells

    return len(text) if text.isascii() else cell_len(text)


def _plain(cell: str) -> str:
    return _TAG.sub("", cell) if isinstance(cell, Styled) else cell


def _colour(cell: str, on: bool) -> str:
    """``cell``'s markup as ANSI escapes (``on``), or removed."""
    if not isinstance(cell, Styled):
        return cell

    def sub(m: re.Match[str]) -> str:
        if not on:
            return ""
        return "\x1b[0m" if m.group(1) is None else f"\x1b[{_ANSI[m.group(1)]}m"

    return _TAG.sub(sub, cell)


def _fold(line: str, width: int) -> list[str]:
    out, cur, used = [], "", 0
    for ch in line:
        w = _cell_len(ch)
        if used + w > width and cur:
            out.append(cur)
            cur, used = "", 0
        cur += ch
        used += w
    return [*out, cur]


def _fit(widths: list[int], heads: Sequence[str], limit: int) -> list[int]:
    """Narrow the widest columns until the table (3 cells of border per column, plus 1) fits ``limit``."""
    widths = list(widths)
    floor = [min(w, max(_MIN_FOLD, _cell_len(h))) for w, h in zip(widths, heads, strict=True)]
    while sum(widths) + 3 * len(widths) + 1 > limit:
        i = max(range(len(widths)), key=lambda k: widths[k] - floor[k])
        if widths[i] <= floor[i]:
            break
        widths[i] -= 1
    return widths


Line = tuple[str, int, str]  # the text to print (markup as colour, or dropped), its width in cells, its plain text


def _lines(cell: str, colour: bool) -> list[Line]:
    if cell.isascii() and cell.isprintable() and not isinstance(cell, Styled):  # most cells: one line, one cell a char
        return [(cell, len(cell), cell)]
    parts = cell.split("\n") if "\n" in cell else [cell]
    if isinstance(cell, Styled):
        return [(_colour(Styled(p), colour), _cell_len(plain), plain) for p in parts for plain in [_plain(Styled(p))]]
    return [(p, _cell_len(p), p) for p in parts]


def render(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[str]], *, right: Sequence[bool],
           caption: str | None = None, width: int | None = None, colour: bool = False) -> str:
    """The table as text; ``width`` folds it to fit (None: never fold)."""
    cells = [[_lines(c, colour) for c in row] for row in rows]
    widths = [_cell_len(h) for h in columns]
    for row in cells:
        for i, lines in enumerate(row):
            for _text, n, _plain_text in lines:
                if n > widths[i]:
                    widths[i] = n
    if width is not None:
        widths = _fit(widths, columns, width)
        cells = [[[(part, _cell_len(part), part) for line in lines for part in _fold(line[2], widths[i])] if any(
            line[1] > widths[i] for line in lines) else lines for i, lines in enumerate(row)] for row in cells]
    bold = (lambda s: f"\x1b[1m{s}\x1b[0m") if colour else (lambda s: s)

    def pad(text: str, n: int, _plain: str, i: int) -> str:
        gap = " " * (widths[i] - n)
        return gap + text if right[i] else text + gap

    def box(left: str, fill: str, mid: str, end: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + end

    blank: Line = ("", 0, "")
    out = [bold(title.center(sum(widths) + 3 * len(widths) + 1).rstrip())] if title else []
    out.append(box("┏", "━", "┳", "┓"))
    out.append("┃" + "┃".join(f" {bold(pad(h, _cell_len(h), h, i))} " for i, h in enumerate(columns)) + "┃")
    out.append(box("┡", "━", "╇", "┩"))
    for row in cells:
        for k in range(max(len(lines) for lines in row)):
            out.append("│" + "│".join(f" {pad(*(lines[k] if k < len(lines) else blank), i)} " for i, lines in enumerate(row))
                       + "│")
    out.append(box("└", "─", "┴", "┘"))
    out += [text.center(sum(widths) + 3 * len(widths) + 1).rstrip() for text in caption.split("\n")] if caption else []
    return "\n".join(out) + "\n"


def colour_on(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def print_table(stream: TextIO, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                right: Sequence[bool], caption: str | None = None) -> None:
    tty = stream.isatty()
    width = shutil.get_terminal_size().columns if tty else None
    stream.write(render(title, columns, rows, right=right, caption=caption, width=width, colour=colour_on(stream)))
    stream.flush()


__all__ = ["Styled", "print_table", "render"]
