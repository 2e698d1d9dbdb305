"""The web UI (`zoo ui`) and the HTML reports (`zoo report`, `zoo parity --html`), in headless Chromium.

The browser is Debian's ``chromium`` + ``chromium-driver`` (installed by .ci/run), driven by Selenium, one
per session; its console log (``browser``) and network log (``performance``: DevTools events) are read
after each page. Screenshots go to $ZOO_TEST_OUTPUT/ui (default: test-output/ui, git-ignored).

The evidence store is made by real zoo commands on tiny models: `zoo parity` on the numpy frameworks of
test_parity.py (registers two versions with the parity report), `zoo bench` (latency report) and
`zoo convert --fp16` (a derived variant and its error report); the eval report has zoo.evaluation's
shape (EVAL below). The 10,000-version store is written through
one metadata transaction on the tiny ONNX factory's artifact (the UI reads records, never bytes).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import cli_on, make_tiny_onnx
from test_parity import FakePlugin

# ---------------------------------------------------------------------------------------- the browser

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"


def start_browser() -> Any:
    """A headless Chromium with console and network logging; fails (never skips) naming the packages."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]'", pytrace=False)
    binary = next((shutil.which(b) for b in CHROMIUM if shutil.which(b)), None)
    driver = shutil.which(DRIVER) or ("/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").exists() else None)
    if binary is None or driver is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium chromium-driver (.ci/run does)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--hide-scrollbars", "--disable-extensions", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def console_errors(browser: Any) -> list[str]:
    """Console messages of level SEVERE since the last call (CSP violations and script errors are SEVERE)."""
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def requests_made(browser: Any) -> list[str]:
    """URLs the page asked the network for since the last call (DevTools ``Network.requestWillBeSent``)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def output_folder() -> Path:
    """Where screenshots go: $ZOO_TEST_OUTPUT/ui, else test-output/ui in the repository (git-ignored)."""
    root = Path(os.environ.get("ZOO_TEST_OUTPUT") or Path(__file__).resolve().parents[1] / "test-output")
    folder = root / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


FAST_BENCH = ["--warmup", "1", "--min-time", "0.02", "--min-iters", "3", "--no-save"]
HOSTILE_LABELS = ("<script>alert(1)</script>", '"double"', "'single'", "a&b", "</td></tr></table>", "<img src=x onerror=alert(2)>",
                  "{{7*7}}", "c", "d", "e")
EVAL = {"ref": "tiny@1", "sha256": "ab" * 32, "k": 5, "top1": 0.8, "top5": 0.95, "images_per_s": 123.4, "seconds": 0.3,
        "data": {"path": "/data/tiny-set", "layout": "folder", "digest": "cd" * 32, "images": 30, "total": 30, "sample": None,
                 "classes": ["cat", "dog", "<bird>"], "skipped": {}, "skipped_examples": {}, "empty_classes": []},
        "per_class": [{"class": "cat", "index": 0, "images": 10, "top1": 0.9}, {"class": "dog", "index": 1, "images": 10, "top1": 0.7},
                      {"class": "<bird>", "index": 2, "images": 10, "top1": 0.8}],
        "confusion": {"labels": ["cat", "dog", "<bird>", "other"], "matrix": [[9, 1, 0, 0], [2, 7, 1, 0], [0, 1, 8, 1]]}}
# (zoo.evaluation's payload; tests/test_eval.py proves `zoo eval` writes exactly this shape from real images)


def _fakes(monkeypatch: pytest.MonkeyPatch, broken: bool = False) -> None:
    import zoo.plugins as plugins_module

    plugins = {"fa": FakePlugin("fa"), "fb": FakePlugin("fb", broken_load=broken)}
    monkeypatch.setattr(plugins_module, "resolve_frameworks", lambda spec, *, arch=None: list(plugins.values()))


@pytest.fixture(scope="session")
def evidence(tmp_path_factory) -> Path:
    """tiny@1 (fa) and tiny@2 (fb) from `zoo parity`, tiny@1's bench and eval reports, tiny@3 its fp16 variant;
    hostile@1 (script tags and quotes in labels, tags, provenance, a report); plain@1 with no reports."""
    from zoo import open_registry
    from zoo.labels import Labels
    from zoo.records import VersionMeta

    root = tmp_path_factory.mktemp("ui-evidence")
    store = root / "store"
    zoo = cli_on(store)
    with pytest.MonkeyPatch.context() as mp:
        _fakes(mp)
        zoo("parity", "tiny", "--num-classes", "10", "--input-size", "32", "--batch", "4", "--name", "tiny")
    bench = json.loads(zoo("bench", "tiny@1", "--batch", "1,2,4", *FAST_BENCH, "--json").stdout)
    zoo("convert", "tiny@1", "--fp16")
    zoo("alias", "tiny@1", "prod")
    zoo("tag", "tiny@1", "team=vision")
    with open_registry(store) as reg:
        reg.attach("tiny@1", "bench", bench)  # what `zoo bench` attaches (it ran with --no-save to keep one copy)
        reg.attach("tiny@1", "eval", EVAL)
        hostile = make_tiny_onnx(root / "hostile.onnx", seed=1)
        reg.register(hostile, name="hostile", tags={"note": "<img src=x onerror=alert(3)>", "q": "\"'`"},
                     meta=VersionMeta(labels=Labels(name="<b>labels</b>", classes=HOSTILE_LABELS), num_classes=10,
                                      provenance={"source": "<script>alert('p')</script>", "weights_sha256": "'\"><svg onload=alert(4)>"}))
        reg.attach("hostile@1", "notes", {"<script>": "</pre><script>alert(5)</script>"})
        reg.attach("hostile@1", "parity", {"arch": "<i>x</i>", "frameworks": ["<a>", "b\"q"], "pairs": [
            {"a": "<a>", "b": "b\"q", "kind": "native-native", "max_rel_error": 2e-7, "max_abs_error": 1e-6, "cosine_min": 1.0,
             "top1_agreement": 1.0, "top5_agreement": 1.0, "passed": True}], "passed": True, "tolerances": {"rtol": 1e-4}})
        reg.register(make_tiny_onnx(root / "plain.onnx", seed=2), name="plain")
    return store


@dataclasses.dataclass
class Served:
    url: str
    state: Any

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, dict(r.headers), r.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode("utf-8")


@pytest.fixture(scope="session")
def serve() -> Iterator[Any]:
    """``serve(opener, **options)`` -> :class:`Served`: a UI server on a free port, in a thread, stopped at the end."""
    from zoo.ui.server import make_server

    servers = []

    def start(opener, **options) -> Served:
        server, state = make_server(opener, port=0, quiet=True, **options)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, state))
        return Served(f"http://127.0.0.1:{server.server_address[1]}", state)

    yield start
    for server, state in servers:
        server.shutdown()
        server.server_close()
        state.close()


@pytest.fixture(scope="session")
def ui(evidence, serve) -> Served:
    from zoo import open_registry

    return serve(lambda: open_registry(evidence, read_only=True))


@pytest.fixture(scope="session")
def browser():
    driver = start_browser()
    yield driver
    driver.quit()


def _open(browser, url: str, shot: str | None = None) -> dict[str, Any]:
    """Load ``url``; return its text, timing and logs; save a screenshot named ``shot``."""
    console_errors(browser), requests_made(browser)  # drop what came before
    browser.get(url)
    timing = browser.execute_script(
        "const t = performance.getEntriesByType('navigation')[0];"
        "return {ttfb: t.responseStart - t.requestStart, dom: t.domContentLoadedEventEnd - t.startTime,"
        " load: t.loadEventEnd - t.startTime};")
    text = browser.find_element("tag name", "body").text
    out = {"text": text, "timing": timing, "errors": console_errors(browser), "requests": requests_made(browser)}
    if shot:
        browser.save_screenshot(str(output_folder() / f"{shot}.png"))
        docs = os.environ.get("ZOO_UI_DOCS")  # ZOO_UI_DOCS=docs: refresh the README's screenshots (taller, whole cards)
        if docs and shot in ("version", "compare"):
            height = min(2600, browser.execute_script("return document.documentElement.scrollHeight"))
            browser.set_window_size(1280, height)
            browser.save_screenshot(str(Path(docs) / f"ui-{shot}.png"))
            browser.set_window_size(1280, 1000)
    return out


def _count(browser, chart_selector: str) -> tuple[int, list[int]]:
    """(series, points per series) of the first chart matching ``chart_selector``."""
    series, points = browser.execute_script(
        "const c = document.querySelector(arguments[0]); if (!c) return [0, []];"
        "const s = c.querySelectorAll('g.series'); return [s.length, Array.from(s, g => g.querySelectorAll('.pt').length)];",
        chart_selector)
    return series, list(points)


# ------------------------------------------------------------------------------------------ pages


def test_models_page_lists_filters_and_links(ui, browser):
    page = _open(browser, ui.url + "/", "models")
    assert page["errors"] == []
    for fact in ("tiny", "hostile", "plain", "3 / 3", "prod→1", "fp16"):
        assert fact in page["text"], fact
    filtered = _open(browser, ui.url + "/?precision=fp16")
    assert "1 models, 1 of 5 versions match" in filtered["text"] and "hostile" not in filtered["text"]
    tagged = _open(browser, ui.url + "/?tag=team%3Dvision&alias=prod")
    assert "1 of 5 versions match" in tagged["text"]
    browser.find_element("link text", "tiny").click()
    assert "/m/tiny" in browser.current_url


def test_model_page_shows_timeline_aliases_and_variants(ui, browser):
    page = _open(browser, ui.url + "/m/tiny", "model")
    assert page["errors"] == []
    assert "3 versions" in page["text"] and "Derived variants" in page["text"] and "tiny@3" in page["text"]
    assert "fp16 from tiny@1" in page["text"]  # the variant is linked to its source
    assert "Alias history" in page["text"] and "set" in page["text"]  # `zoo alias tiny@1 prod`, from the history records
    assert _count(browser, "svg[data-chart=line]") == (1, [3])  # versions over time: one series, one point per version


def test_version_page_is_the_evidence_card(ui, browser):
    page = _open(browser, ui.url + "/v/tiny/1", "version")
    text = page["text"]
    assert page["errors"] == [] and page["requests"] == [ui.url + "/v/tiny/1"], page
    for fact in ("architecture", "tiny", "params (trainable)", "MACs per sample", "sha256", "prod", "team=vision",
                 "Derived variants: tiny@3 (fp16)", "parity", "passed", "bench", "eval", "80.00%", "weights_sha256"):
        assert fact in text, fact
    # parity: 2 frameworks + their 2 exports -> a 4x4 matrix; bench: onnxruntime p50/p90/p99 at batches 1, 2, 4
    assert _count(browser, "section[data-kind=parity] svg[data-chart=heatmap]") == (4, [4, 4, 4, 4])
    assert _count(browser, "section[data-kind=bench] svg[data-chart=line]") == (3, [3, 3, 3])
    assert _count(browser, "section[data-kind=eval] svg[data-chart=heatmap]") == (3, [3, 3, 3])
    head = browser.find_element("xpath", "//section[@data-kind='bench']//th[text()='batch']")
    head.click()
    head.click()  # descending: the script sorts in place; without it the server's order (ascending) stays
    batches = browser.execute_script(
        "return Array.from(document.querySelectorAll('section[data-kind=bench] tbody tr'), r => r.cells[1].textContent)")
    assert batches == ["4", "2", "1"]
    variant = _open(browser, ui.url + "/v/tiny/3")
    assert "Converted (fp16) from tiny@1" in variant["text"] and "fp16-parity" in variant["text"]


def test_compare_page_highlights_differences_on_shared_axes(ui, browser):
    from selenium.webdriver.support.wait import WebDriverWait

    page = _open(browser, ui.url + "/compare?ref=tiny@1&ref=tiny@2&ref=tiny@3", "compare")
    assert page["errors"] == []
    differing = browser.execute_script("return Array.from(document.querySelectorAll('table.compare tr.diff th'), th => th.textContent)")
    assert any(d.startswith("framework") for d in differing) and any(d.startswith("precision") for d in differing)
    assert not any(d.startswith("architecture") for d in differing)  # same arch: not highlighted
    assert len(browser.find_elements("css selector", "section[data-kind=parity] svg[data-chart=heatmap]")) == 2  # @1, @2 have parity
    assert _count(browser, "section[data-kind=bench] svg[data-chart=line]")[0] == 3  # only tiny@1 has a bench report
    assert _count(browser, "section[data-kind=conversion] svg[data-chart=bar]") == (1, [1])  # tiny@3's error vs tiny@1
    browser.get(ui.url + "/m/tiny")  # the compare form works without JavaScript: tick two, submit
    for box in browser.find_elements("css selector", "input[name=ref]")[:2]:
        box.click()
    browser.find_element("css selector", "form[action='/compare'] button").click()
    WebDriverWait(browser, 10).until(lambda b: "/compare?" in b.current_url)
    assert "Compare tiny@3, tiny@2" in browser.find_element("tag name", "h1").text


def test_hostile_contents_render_as_text(ui, browser):
    page = _open(browser, ui.url + "/v/hostile/1", "hostile")
    assert page["errors"] == [] and page["requests"] == [ui.url + "/v/hostile/1"]
    assert browser.execute_script("return document.scripts.length") == 1  # ours only
    assert browser.execute_script("return document.querySelectorAll('img, iframe, object, embed').length") == 0
    labels = browser.find_element("css selector", "details.labels")
    assert not labels.get_attribute("open") and HOSTILE_LABELS[0] not in labels.text  # collapsed until asked
    browser.find_element("css selector", "details.labels summary").click()
    shown = browser.find_element("css selector", "details.labels").text
    for label in HOSTILE_LABELS:
        assert label in shown, label
    assert "<img src=x onerror=alert(3)>" in page["text"] and "<script>alert('p')</script>" in page["text"]
    assert "alert(5)" in browser.find_element("css selector", "section[data-kind=notes]").get_attribute("textContent")
    with pytest.raises(Exception, match="no such alert"):
        browser.switch_to.alert.text  # noqa: B018 (nothing ran)


def test_a_version_without_reports(ui, browser):
    page = _open(browser, ui.url + "/v/plain/1")
    assert page["errors"] == [] and "Reports (0)" in page["text"] and "no reports attached" in page["text"]


def test_every_fact_is_in_the_html_without_javascript(ui, browser):
    status, headers, html = ui.get("/v/tiny/1")
    assert status == 200 and html.count("<script") == 1 and "fetch(" not in html and "XMLHttpRequest" not in html
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        page = _open(browser, ui.url + "/v/tiny/1")
        for fact in ("params (ONNX initializers)", "team=vision", "p99 ms", "80.00%", "tiny@3", "fb-onnx vs fa"):
            assert fact in page["text"], fact
        assert _count(browser, "section[data-kind=bench] svg[data-chart=line]") == (3, [3, 3, 3])
        head = browser.find_element("xpath", "//section[@data-kind='bench']//th[text()='batch']")
        head.click()
        head.click()  # the page's script is off: no sorting, the server's order stays
        assert browser.execute_script(
            "return Array.from(document.querySelectorAll('section[data-kind=bench] tbody tr'), r => r.cells[1].textContent)"
        ) == ["1", "2", "4"]
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})


# --------------------------------------------------------------------------------------- security


@pytest.mark.parametrize("path,status", [
    ("/../../etc/passwd", 404), ("/v/..%2F..%2Fetc/1", 400), ("/m/%2e%2e", 400), ("/registry.db", 404), ("/objects", 404),
    ("/v/tiny/1%00", 400), ("/v/tiny/-1", 400), ("/m/%3Cscript%3E", 400), ("/v/nothing/1", 404), ("/?page=0", 400),
    ("/compare?ref=tiny@1", 400), ("/compare?ref=tiny@1&ref=..%2Fx", 400),
])
def test_no_url_reaches_a_file_and_errors_are_pages(ui, path, status):
    got, headers, html = ui.get(path)
    assert got == status and "root:" not in html and "SQLite" not in html
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_the_server_only_reads_and_refuses_other_hosts(ui, evidence):
    before = {p.relative_to(evidence): p.stat().st_mtime_ns for p in evidence.rglob("*") if p.is_file()}
    request = urllib.request.Request(ui.url + "/v/tiny/1", method="POST", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 405
    assert ui.get("/", Host="evil.example:80")[0] == 421  # DNS rebinding: a foreign page cannot read the store
    status, headers, _ = ui.get("/")
    assert status == 200 and headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    for path in ("/", "/m/tiny", "/v/tiny/1", "/compare?ref=tiny@1&ref=tiny@2"):
        assert ui.get(path)[0] == 200
    after = {p.relative_to(evidence): p.stat().st_mtime_ns for p in evidence.rglob("*") if p.is_file()}
    assert after == before


class _Blocking:
    """A registry whose ``list`` waits for ``release``: the index rebuild hangs while other pages are asked for."""

    def __init__(self, inner, release: threading.Event, entered: threading.Event):
        self._inner, self._release, self._entered = inner, release, entered
        self.first = True

    def list(self, *args, **kwargs):
        if not self.first:
            self._entered.set()
            self._release.wait(30)
        self.first = False
        return self._inner.list(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_the_server_stays_responsive_while_the_index_is_reread(evidence, serve):
    from zoo import open_registry

    release, entered = threading.Event(), threading.Event()
    ui = serve(lambda: _Blocking(open_registry(evidence, read_only=True), release, entered), refresh_s=0.0)
    try:
        assert ui.get("/")[0] == 200  # stale index: starts the re-read in the background, answers at once
        assert entered.wait(10)
        started = time.perf_counter()
        results = []
        threads = [threading.Thread(target=lambda p=p: results.append(ui.get(p)[0])) for p in ("/", "/v/tiny/1", "/m/tiny") * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert results == [200] * 6 and time.perf_counter() - started < 10
    finally:
        release.set()


@pytest.mark.parametrize("backend", ["embedded", "shared"], indirect=True)
def test_the_ui_reads_either_backend(backend, serve, tmp_path):
    from zoo.labels import Labels
    from zoo.records import VersionMeta

    with backend.open() as reg:
        reg.register(make_tiny_onnx(tmp_path / "a.onnx"), name="remote", tags={"t": "<script>x</script>"},
                     meta=VersionMeta(labels=Labels(name="l", classes=HOSTILE_LABELS), num_classes=10))
        reg.attach("remote@1", "eval", EVAL)
    ui = serve(backend.open)
    status, _, html = ui.get("/v/remote/1")
    assert status == 200 and "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    assert "remote" in ui.get("/")[2] and "confusion matrix" in html


# ------------------------------------------------------------------------------------- 10,000 versions


@pytest.fixture(scope="session")
def big(tmp_path_factory, serve) -> Served:
    """10,000 versions: big@1..5000 and m000..m049 with 100 each, on one stored artifact."""
    from zoo import open_registry
    from zoo._registry import Registry

    root = tmp_path_factory.mktemp("ui-big") / "store"
    reg = Registry.open(root, create=True)
    seed = reg.register(make_tiny_onnx(root.parent / "t.onnx"), name="seed").version
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    with reg._write() as txn:  # one transaction: seconds, not the minutes of 10,000 registrations
        for i in range(10_000):
            sha = hashlib.sha256(f"{seed.sha256}:{i}".encode()).hexdigest()  # (name, sha256) is unique per model
            made = (start + timedelta(minutes=7 * i + (i * i) % 97)).isoformat()  # spread over weeks, unevenly
            txn.add_version(dataclasses.replace(seed, name="big" if i < 5000 else f"m{i % 50:03d}", version=0, sha256=sha,
                                                created_at=made, tags={"team": f"t{i % 7}"}))
    reg.set_alias("big@4321", "prod")
    reg.close()
    return serve(lambda: open_registry(root, read_only=True))


def test_ten_thousand_versions_render_in_under_a_second(big, browser):
    models = _open(browser, big.url + "/", "models-10k")
    assert models["errors"] == [] and "of 10,001 versions match" in models["text"] and "page 1 of 2" in models["text"]
    model = _open(browser, big.url + "/m/big?page=7", "model-10k")
    assert "5,000 versions" in model["text"] and "page 7 of 50" in model["text"] and "prod" in model["text"]
    assert _count(browser, "svg[data-chart=line]")[1][0] <= 201  # the timeline is thinned, not 5,000 points
    version = _open(browser, big.url + "/v/big/4321")
    filtered = _open(browser, big.url + "/?q=m04&tag=team%3Dt3")
    assert "10 models" in filtered["text"]
    figures = {k: round(p["timing"]["load"]) for k, p in (("models", models), ("model", model), ("version", version),
                                                          ("filtered", filtered))}
    print(f"\n10,000 versions: index read in {big.state.index.build_s:.2f} s at start; page load ms {figures}")
    assert models["timing"]["load"] < 1000 and filtered["timing"]["load"] < 1000, figures


# ------------------------------------------------------------------------------------------ reports


def test_report_is_one_offline_file_that_parses(evidence, browser, tmp_path):
    import html5lib

    out = tmp_path / "report.html"
    result = CliRunner().invoke(__import__("zoo.cli", fromlist=["main"]).main,
                                ["--store", str(evidence), "report", "tiny@1", "--against", "tiny@3", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["bytes"] == out.stat().st_size
    text = out.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)  # raises on any parse error
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)
    page = _open(browser, out.as_uri(), "report")
    assert page["errors"] == [] and page["requests"] == [out.as_uri()], page["requests"]
    assert "tiny@1 against tiny@3" in page["text"] and "precision ≠" in page["text"]
    print(f"\nreport {out.stat().st_size / 1000:.1f} KB")
    assert out.stat().st_size < 300_000


def test_hostile_report_parses_and_stays_inert(evidence, browser, tmp_path):
    import html5lib

    out = tmp_path / "hostile.html"
    cli_on(evidence)("report", "hostile@1", "-o", str(out))
    html5lib.HTMLParser(strict=True).parse(out.read_text(encoding="utf-8"))
    page = _open(browser, out.as_uri())
    assert page["errors"] == [] and browser.execute_script("return document.scripts.length") == 1


def test_parity_html_is_written_on_failure_too(tmp_path, monkeypatch, browser):
    from zoo.cli import main

    _fakes(monkeypatch, broken=True)
    out = tmp_path / "parity.html"
    result = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "parity", "tiny", "--num-classes", "10", "--input-size", "32",
                                       "--batch", "4", "--html", str(out)])
    assert result.exit_code == 10 and out.exists(), result.output
    page = _open(browser, out.as_uri(), "parity-failure")
    assert page["errors"] == [] and page["requests"] == [out.as_uri()]
    assert "FAILED" in page["text"] and "First diverging layer group: hidden" in page["text"] and "nothing registered" in page["text"]
    red = browser.execute_script("return document.querySelectorAll('rect.pt[fill=\"#d9534f\"]').length")
    assert red >= 2  # the failing pairs, both halves of the symmetric matrix


def test_report_refuses_a_missing_folder_and_unknown_version(evidence, tmp_path):
    zoo = cli_on(evidence)
    zoo("report", "tiny@1", "-o", str(tmp_path / "no" / "r.html"), code=2)
    zoo("report", "tiny@99", "-o", str(tmp_path / "r.html"), code=3)
    assert not (tmp_path / "r.html").exists()


# ---------------------------------------------------------------------------------- eval, unit level


def test_eval_section_draws_the_documented_shape():
    from zoo.ui.card import MAX_CONFUSION, eval_section

    html = eval_section(EVAL)
    assert "80.00%" in html and "95.00%" in html and "tiny-set" in html and "&lt;bird&gt;" in html and "<bird>" not in html
    assert html.count('<rect class="pt"') == 3 * 3 + 3  # the 3x3 confusion matrix and 3 per-class bars
    n = 60
    big = eval_section({"top1": 0.5, "confusion": {"labels": [*map(str, range(n)), "other"],
                                                  "matrix": [[1 if i == j else 0 for j in range(n + 1)] for i in range(n)]}})
    assert big.count('<rect class="pt"') == MAX_CONFUSION ** 2 and f"{n:,} classes" in big
    assert "-" in eval_section({})  # every key optional


# ---------------------------------------------------------------------------------------------- the CLI


def test_zoo_ui_command_serves_and_refuses_a_missing_store(evidence, tmp_path):
    import subprocess
    import sys

    from conftest import subprocess_env

    proc = subprocess.Popen([sys.executable, "-m", "zoo", "--store", str(evidence), "ui", "--port", "0", "--json", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        started = json.loads(proc.stdout.readline())
        assert started["url"].startswith("http://127.0.0.1:") and started["versions"] == 5
        with urllib.request.urlopen(started["url"] + "v/tiny/1", timeout=30) as r:
            assert r.status == 200 and "tiny@1" in r.read().decode()
    finally:
        proc.terminate()
        proc.wait(30)
    cli_on(tmp_path / "none")("ui", "--port", "0", code=3)  # reads never create a store; nothing is bound
