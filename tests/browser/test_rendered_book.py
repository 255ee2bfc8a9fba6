"""The rendered HTML book in a real browser (headless Chromium driven by Playwright).

Run after `jupyter-book build .` (scripts/test.sh does): serves `_build/html` on
localhost, opens every page and checks that no page has a JavaScript error, math is
typeset (MathJax output present), every image loads, internal links resolve, audio
players have a playable source, code fits the page at 1280 px (no code cell or
command scrolls sideways; outputs such as wide tables may) and each chapter numbers
its exercises after itself (3.1.1, 3.1.2, ...). Screenshots go to
`_build/screenshots/`.
Chromium comes from `scripts/install_browser.sh` (Debian's package) or
$COURSE_LIB_CHROMIUM; without one the test is skipped with that message.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import threading
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
# Flags for a closed network: no background connections, no sandbox as root.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


# Console messages that are not errors of the book: pydata-sphinx-theme logs this with
# console.error on a first visit, before any colour mode is saved, then uses "auto".
BENIGN = ("Got invalid theme mode: . Resetting to auto.",)


def chromium() -> str | None:
    """The Chromium executable: $COURSE_LIB_CHROMIUM, else chromium on PATH."""
    return os.environ.get("COURSE_LIB_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")


def pages() -> list[Path]:
    """Every HTML page of the built book (not the theme's static files)."""
    skip = {"_static", "_sources", "_images"}
    return sorted(p for p in HTML.rglob("*.html")
                  if not skip & set(p.relative_to(HTML).parts))


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        pytest.skip(f"no built book at {HTML}: run `jupyter-book build .` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # the browser drops audio range requests midway: not an error


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output readable
        pass


@pytest.fixture(scope="module")
def browser():
    exe = chromium()
    if not exe:
        pytest.skip("no Chromium found: run `bash scripts/install_browser.sh` "
                    "(Debian's "
                    "chromium package) or set COURSE_LIB_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=FLAGS)
        yield b
        b.close()


def status(url: str, cache: dict[str, int]) -> int:
    """HTTP status of a local URL (cached)."""
    if url not in cache:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                cache[url] = r.status
        except urllib.error.HTTPError as exc:
            cache[url] = exc.code
    return cache[url]


CHECK_JS = """async () => {
  const out = {};
  out.mathSources = document.querySelectorAll('.math, div.math, span.math').length;
  out.mathRendered = document.querySelectorAll('mjx-container').length;
  out.brokenImages = [...document.images]
      .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 120));
  out.images = document.images.length;
  out.links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  // Code (cells and commands in the text) wider than its block: the longest line.
  const longest = p => p.innerText.split('\\n')
      .reduce((a, b) => b.length > a.length ? b : a, '');
  const cells = sel => [...document.querySelectorAll(sel)];
  const code = cells('article div.highlight pre')
      .filter(p => !p.closest('div.cell_output'));
  out.codeCells = cells('div.cell_input pre').length;
  out.codeBlocks = code.length;
  out.wideCode = code.filter(p => p.scrollWidth > p.clientWidth + 1)
      .map(p => longest(p).trim().slice(0, 60));
  out.wideOutputs = cells('div.cell_output pre')
      .filter(p => p.scrollWidth > p.clientWidth + 1).length;
  // The ledger's and the targets' HTML tables must fit the article's column.
  const column = (document.querySelector('article') || document.body)
      .getBoundingClientRect().right;
  out.tables = cells('table.course-ledger, table.course-targets').length;
  out.wideTables = cells('table.course-ledger, table.course-targets')
      .filter(t => t.getBoundingClientRect().right > column + 1)
      .map(t => t.className + ': ' +
           (t.querySelector('td') || t).innerText.slice(0, 40));
  // TeX that MathJax did not typeset: its delimiters left in the visible text.
  out.rawTex = [];
  const walker = document.createTreeWalker(
      document.querySelector('article') || document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const skip = 'pre, code, mjx-container, script, style, .cell_output';
    if (n.parentElement.closest(skip)) continue;
    if (/\\\\[()\\[\\]]|\\$/.test(n.textContent))
      out.rawTex.push(n.textContent.replace(/\\s+/g, ' ').trim().slice(0, 60));
  }
  out.exercises = cells('div.exercise > .admonition-title')
      .map(t => t.textContent.replace(/\\s+/g, ' ').trim());
  const audios = [...document.querySelectorAll('audio')];
  out.audio = await Promise.all(audios.map(a => new Promise(resolve => {
    const src = a.currentSrc || a.src ||
        (a.querySelector('source') || {}).src || '';
    const type = (a.querySelector('source') || {}).type || '';
    const done = ok => resolve({src: src.slice(0, 40), ok,
        canPlay: type ? a.canPlayType(type) : 'unknown', duration: a.duration});
    if (a.readyState >= 1) return done(a.duration > 0);
    a.addEventListener('loadedmetadata', () => done(a.duration > 0), {once: true});
    a.addEventListener('error', () => done(false), {once: true});
    a.load();
    setTimeout(() => done(a.readyState >= 1 && a.duration > 0), 10000);
  })));
  return out;
}"""


def test_every_page_renders_in_chromium(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    link_status: dict[str, int] = {}
    problems: list[str] = []
    totals = dict(pages=0, images=0, math=0, audio=0, links=0, code_cells=0,
                  code_blocks=0, outputs_scrolling=0, exercises=0, tables=0)
    for path in pages():
        rel = path.relative_to(HTML).as_posix()
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        page.on("console", lambda msg, errors=errors: errors.append(msg.text)
                if msg.type == "error" and msg.text not in BENIGN
                and not msg.text.startswith("Failed to load resource") else None)
        # A resource that fails to load is reported with its address instead.
        page.on("response", lambda r, errors=errors: errors.append(
            f"{r.url} answers {r.status}") if r.status >= 400 else None)
        page.goto(urljoin(server, rel), wait_until="networkidle")
        if page.locator(".math").count():
            try:  # MathJax typesets after load
                page.wait_for_selector("mjx-container", timeout=15000)
            except Exception:
                pass
        info = page.evaluate(CHECK_JS)
        page.screenshot(path=str(SHOTS / (rel.replace("/", "__") + ".png")),
                        full_page=True)
        page.close()
        totals["pages"] += 1
        totals["images"] += info["images"]
        totals["math"] += info["mathRendered"]
        totals["audio"] += len(info["audio"])
        totals["code_cells"] += info["codeCells"]
        totals["code_blocks"] += info["codeBlocks"]
        totals["outputs_scrolling"] += info["wideOutputs"]
        for line in info["wideCode"]:
            problems.append(f"{rel}: code wider than the page: {line}")
        for table in info["wideTables"]:
            problems.append(f"{rel}: table wider than the page at 1280 px: {table}")
        totals["tables"] += info["tables"]
        totals["exercises"] += len(info["exercises"])
        chapter = re.match(r"book/(\d+)(?:_(\d+))?_", rel)  # book/03_1_... -> 3.1
        number = ".".join(str(int(g)) for g in chapter.groups() if g) if chapter else ""
        for k, title in enumerate(info["exercises"], start=1):
            if not title.startswith(f"Exercise {number}.{k} "):
                problems.append(f"{rel}: exercise {k} is titled {title!r}")
        for e in errors:
            problems.append(f"{rel}: JavaScript error: {e[:200]}")
        for text in info["rawTex"]:
            problems.append(f"{rel}: TeX left untypeset: {text!r}")
        if info["mathSources"] and not info["mathRendered"]:
            problems.append(f"{rel}: {info['mathSources']} math elements, none typeset")
        for src in info["brokenImages"]:
            problems.append(f"{rel}: image does not load: {src}")
        for a in info["audio"]:
            if not a["ok"] or a["canPlay"] == "":
                problems.append(f"{rel}: audio not playable: {a}")
        for href in info["links"]:
            url = urldefrag(href)[0]
            if urlparse(url).netloc != urlparse(server).netloc:
                continue  # external links are not checked offline
            totals["links"] += 1
            code = status(url, link_status)
            if code != 200:
                problems.append(f"{rel}: link {url} answers {code}")
    print(f"checked {totals}; screenshots in {SHOTS}")
    assert totals["pages"] >= 5, f"only {totals['pages']} pages in {HTML}"
    assert totals["math"] > 0 and totals["images"] > 0 and totals["audio"] > 0, totals
    assert totals["code_cells"] > 0 and totals["exercises"] > 0, totals
    assert totals["tables"] > 0, totals  # the ledger's and targets' tables were seen
    assert not problems, "\n".join(problems[:40])
