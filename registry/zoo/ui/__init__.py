"""See the registry: a read-only web UI (``zoo ui``) and self-contained HTML reports (``zoo report``).

Modules: :mod:`._html` (escaping, the page shell and its CSP), :mod:`.svg` (charts as inline SVG),
:mod:`.card` (a version's evidence card), :mod:`.pages` (the UI's pages), :mod:`.server` (the HTTP
server), :mod:`.report` (report files). Importing this package imports no framework and no ONNX library:
pages read records only.
"""
from __future__ import annotations

__all__: list[str] = []
