"""The built book as a reader sees it: every page of ``_build/html`` opened in headless Chromium
at 1280 px and at 400 px. Run by ``scripts/browser-test.sh`` after the book build (CI does this in
``.ci/run``); it is named so that the main test run, which comes before the build, does not
collect it.

A page fails on:

* an element of the text column (table, code, output, equation, image) wider than the column at
  1280 px, or holding lines that are cut off (content wider than the element itself);
* at 400 px, anything that makes the page itself scroll sideways (wide things must scroll inside
  their own container);
* a MathJax error, a console error, an uncaught exception or a failed request (every host but
  127.0.0.1 is unresolvable, so a page that needs a CDN fails here);
* an image without alt text, or whose alt text is a file path; at 400 px, a figure shown at less
  than 3/4 of its size that is not a link to its full-size image (``_static/colorlab-figures.js``);
* an output that contains a warning, a stderr stream or an absolute path.

Chromium comes from Debian's packages (``apt-get install chromium``; installed here when missing
and possible) and MathJax from the npm registry (``mathjax@3.2.2`` into ``_build/browser``): the
pages are served on 127.0.0.1 with the CDN address of MathJax rewritten to the local copy.
Screenshots of every page at both widths are written to ``$COLORLAB_SHOTS`` when it is set.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from cdp import Browser

REPO = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("COLORLAB_BOOK_HTML", REPO / "_build" / "html"))
MATHJAX_VERSION = "3.2.2"
MATHJAX_CDN = re.compile(rb"https://cdn\.jsdelivr\.net/npm/mathjax@[^/\"']+/")
WIDTHS = (1280, 400)
PAGES = sorted(p.relative_to(HTML).as_posix() for p in HTML.glob("**/*.html")
               if p.name not in ("search.html", "genindex.html")
               and not p.relative_to(HTML).as_posix().startswith(("_", "."))
               and 'http-equiv="refresh"' not in p.read_text(errors="replace").lower()) \
    if HTML.is_dir() else []  # redirect pages (the root index.html) only forward the reader

# One script collects every measurement of a page; Python decides what fails.
MEASURE = r"""
(() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  if (!article) return null;  // a redirect page (the root index.html)
  const box = article.getBoundingClientRect(), style = getComputedStyle(article);
  const col = {left: box.left + parseFloat(style.paddingLeft),
               right: box.right - parseFloat(style.paddingRight)};
  col.width = col.right - col.left;
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  const heading = el => { let h = el; while (h && !/^H[1-3]$/.test(h.tagName)) {
      h = h.previousElementSibling || h.parentElement; } return h ? h.innerText.slice(0, 60) : ''; };
  const wide = [], cut = [];
  const boxes = 'table, pre, div.cell_output, div.output, div.math, mjx-container[display="true"], img, figure';
  for (const el of article.querySelectorAll(boxes)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || el.closest('.d-none')) continue;
    if (r.right > col.right + 1 || r.left < col.left - 1)
      wide.push({el: name(el), width: Math.round(r.width), column: Math.round(col.width), near: heading(el)});
    if (el.matches('table, pre, div.math, mjx-container') && el.scrollWidth > el.clientWidth + 1)
      cut.push({el: name(el), content: el.scrollWidth, shown: el.clientWidth,
                text: el.innerText.split('\n').sort((a, b) => b.length - a.length)[0].slice(0, 100)});
  }
  const images = [...article.querySelectorAll('img')].map(img => ({
      src: img.getAttribute('src'), alt: img.getAttribute('alt'),
      width: img.getBoundingClientRect().width, natural: img.naturalWidth,
      // the link a shrunk figure gets (_static/colorlab-figures.js) leads to the image itself
      fullSize: !!(img.closest('a') && img.closest('a').href === img.currentSrc)}));
  const outputs = [...article.querySelectorAll('div.cell_output, div.output')].map(o => ({
      stderr: o.matches('.stderr') || !!o.querySelector('.stderr, .output.stderr'),
      text: o.innerText,
      // the output without the library source a chapter shows (colorlab.pages.show_source):
      // `warnings.catch_warnings()` in shown code is not a warning the page printed
      prose: (() => { const c = o.cloneNode(true);
                      c.querySelectorAll('div.highlight-python').forEach(e => e.remove());
                      return c.textContent; })()}));
  const mathNodes = article.querySelectorAll('.math, div.math, span.math').length;
  return {column: col.width, pageWidth: document.documentElement.scrollWidth,
          viewport: window.innerWidth, wide, cut, images, outputs, mathNodes,
          mathRendered: document.querySelectorAll('mjx-container').length,
          mathErrors: [...document.querySelectorAll('mjx-merror, [data-mjx-error]')].map(e =>
              e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5)};
})()
"""
WAIT_FOR_MATHJAX = ("(window.MathJax && MathJax.startup && MathJax.startup.promise) ? "
                    "MathJax.startup.promise.then(() => true) : Promise.resolve(false)")
ABSOLUTE_PATH = re.compile(r"(?:^|[\s'\"(=:])(/(?:home|work|tmp|root|usr|opt|var|mnt|srv|Users|"
                           r"private|content|github)/[^\s'\")]*|[A-Za-z]:\\[^\s'\"]+)")
WARNING = re.compile(r"\bwarn(?:ing|ings)?\b|UserWarning|DeprecationWarning", re.I)
FILE_LIKE = re.compile(r"(^|[/\\])[\w.-]+\.(png|jpe?g|svg|gif|webp)$|^[./\\]|[/\\]", re.I)


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@functools.cache
def chromium() -> tuple[str | None, str]:
    """The Chromium executable, installed from Debian's packages when missing; or ``None`` and
    why it could not be installed."""
    found = _find_chromium()
    if found:
        return found, ""
    if not shutil.which("apt-get"):
        return None, "Chromium is not installed and this system has no apt-get to install it"
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if prefix and not shutil.which("sudo"):
        return None, "Chromium is not installed, and installing it needs root (no sudo here)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    tail = ""
    for cmd in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "chromium"]):
        run = subprocess.run(prefix + cmd, capture_output=True, text=True, env=env)
        tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or [""]
        tail = tail[0]
        if cmd[1] == "install" and run.returncode == 0 and _find_chromium():
            return _find_chromium(), ""
    return None, f"Chromium could not be installed with apt-get ({tail})"


def mathjax_dir() -> Path:
    """A local MathJax from the npm registry (installed into ``_build/browser`` once)."""
    prefix = REPO / "_build" / "browser"
    es5 = prefix / "node_modules" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").is_file():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install MathJax from the npm registry"
        run = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix),
                              f"mathjax@{MATHJAX_VERSION}"], capture_output=True, text=True)
        assert run.returncode == 0, f"npm install mathjax failed: {run.stderr[-2000:]}"
    return es5.parent


class _Handler(http.server.SimpleHTTPRequestHandler):
    mathjax: Path

    def log_message(self, *args):  # quiet
        pass

    def translate_path(self, path):
        if path.startswith("/__mathjax__/"):
            return str(self.mathjax / path.split("?")[0][len("/__mathjax__/"):])
        return super().translate_path(path)

    def send_head(self):
        if self.path == "/favicon.ico":  # asked for by the browser, not by the book
            self.send_response(204)
            self.end_headers()
            return None
        path = Path(self.translate_path(self.path))
        if path.suffix != ".html" or not path.is_file():
            return super().send_head()
        body = MATHJAX_CDN.sub(b"/__mathjax__/", path.read_bytes())
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        import io
        return io.BytesIO(body)


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").is_file():
        pytest.fail(f"no built book at {HTML}: run bash scripts/build-book.sh first")
    handler = functools.partial(type("H", (_Handler,), {"mathjax": mathjax_dir()}),
                                directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    exe, why = chromium()
    if exe is None:
        pytest.skip(why)
    with Browser(exe) as b:
        yield b


def _problems_in_events(events: list[dict]) -> list[str]:
    found = []
    for ev in events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            found.append("console error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                      for a in p.get("args", []))[:300])
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            found.append("uncaught exception: " + str(d.get("exception", {}).get(
                "description", d.get("text")))[:300])
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            found.append(f"console error: {e.get('text')} {e.get('url', '')}"[:300])
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            found.append(f"failed request: {p.get('errorText')} ({p.get('type')})")
    return found


def page_problems(page: dict, width: int) -> list[str]:
    """What a reader would see as broken on one page at one width (from :data:`MEASURE`)."""
    problems = []
    if width >= 1280:
        problems += [f"wider than the {w['column']} px column: {w['el']} ({w['width']} px) "
                     f"near '{w['near']}'" for w in page["wide"]]
        problems += [f"cut off: {c['el']} shows {c['shown']} of {c['content']} px: "
                     f"'{c['text']}'" for c in page["cut"]]
    else:  # on a phone a wide table or code block may scroll in its box; an equation may not
        problems += [f"cut off: {c['el']} shows {c['shown']} of {c['content']} px: "
                     f"'{c['text']}'" for c in page["cut"]
                     if c["el"].startswith("mjx-container")
                     or (c["el"].startswith("div") and ".math" in c["el"])]
    if page["pageWidth"] > page["viewport"] + 1:
        problems.append(f"the page scrolls sideways at {width} px ({page['pageWidth']} px wide)")
    if page["mathNodes"] and not page["mathRendered"]:
        problems.append("MathJax rendered no equation")
    problems += [f"MathJax error: {e}" for e in page["mathErrors"]]
    for img in page["images"]:
        if width < 1280 and img["width"] < 0.75 * img["natural"] and not img["fullSize"]:
            problems.append(f"a figure shown at {img['width'] / img['natural']:.0%} of its size "
                            f"does not link to its full size: {img['src']}")
        alt = (img["alt"] or "").strip()
        if not alt:
            problems.append(f"image without alt text: {img['src']}")
        elif FILE_LIKE.search(alt) and len(alt.split()) < 3:
            problems.append(f"alt text is a file path: {alt!r}")
    for out in page["outputs"]:
        if out["stderr"]:
            problems.append(f"stderr in an output: {out['text'][:200]!r}")
        if WARNING.search(out.get("prose", out["text"])):
            problems.append(f"warning in an output: {out['text'][:200]!r}")
        for path in ABSOLUTE_PATH.findall(out["text"]):
            problems.append(f"absolute path in an output: {path!r}")
    return problems


@pytest.mark.parametrize("page", PAGES)
def test_page_reads_well_at_both_widths(page, site, browser):
    shots = os.environ.get("COLORLAB_SHOTS")
    problems = []
    for width in WIDTHS:
        browser.open(site + page, width)
        browser.evaluate(WAIT_FOR_MATHJAX, await_promise=True)
        measured = browser.evaluate(MEASURE)
        found = page_problems(measured, width) if measured else []
        problems += [f"{width} px: {p}" for p in found + _problems_in_events(browser.events())]
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            browser.screenshot(str(Path(shots) / f"{page.replace('/', '_')[:-5]}-{width}.png"),
                               full_page=True)
    assert not problems, f"{page}:\n  " + "\n  ".join(dict.fromkeys(problems))


def test_the_book_was_found():
    assert PAGES, f"no pages under {HTML}"
    assert any(p.startswith("book/05") for p in PAGES), PAGES


def test_the_note_for_colab_readers_is_left_out_of_the_pages():
    """Each chapter's second cell speaks to a reader in Colab (scripts/pairs.py); its
    ``remove-cell`` tag keeps it off the book's pages."""
    assert not [p for p in PAGES if "Reading this in Colab or Jupyter?" in (HTML / p).read_text()]


def test_page_problems_catches_what_it_should():
    """The checks themselves, on a synthetic measurement (no browser)."""
    bad = {"column": 688, "pageWidth": 500, "viewport": 400, "mathNodes": 2, "mathRendered": 0,
           "mathErrors": ["Undefined control sequence"],
           "wide": [{"el": "table", "width": 900, "column": 688, "near": "Table 1"}],
           "cut": [{"el": "pre", "content": 900, "shown": 688, "text": "x" * 90}],
           "images": [{"src": "a.png", "alt": "_build/jupyter_execute/a.png"},
                      {"src": "b.png", "alt": ""}],
           "outputs": [{"stderr": True, "text": "/work/x/colorlab/data.py:209: UserWarning: ..."}]}
    text = "\n".join(page_problems(bad, 1280))
    for expected in ("wider than", "cut off", "sideways", "MathJax rendered no", "MathJax error",
                     "alt text is a file path", "without alt text", "stderr", "warning in",
                     "absolute path"):
        assert expected in text, expected
    good = dict(bad, pageWidth=400, mathRendered=2, mathErrors=[], wide=[], cut=[],
                images=[{"src": "a.png", "alt": "The 313 ab bins at L = 50.", "width": 368,
                         "natural": 368, "fullSize": False}],
                outputs=[{"stderr": False, "text": "images/s 5,127 at batch 64 (1/4 size)"},
                         # library source shown by a chapter: its `warnings` is not a warning
                         {"stderr": False, "text": "with warnings.catch_warnings():",
                          "prose": "# colorlab.training_step.TrainingStep.update"}])
    assert page_problems(good, 1280) == []
    phone = dict(good, cut=[{"el": "pre", "content": 900, "shown": 368, "text": "x"},
                            {"el": "div#equation-eq-xyz.math", "content": 420, "shown": 368,
                             "text": "X = M"}])
    assert [p for p in page_problems(phone, 400) if "cut off" in p] == [
        "cut off: div#equation-eq-xyz.math shows 368 of 420 px: 'X = M'"]
    shrunk = {"src": "f.png", "alt": "Four panels.", "width": 368, "natural": 1200}
    assert page_problems(dict(good, images=[dict(shrunk, fullSize=False)]), 400) == [
        "a figure shown at 31% of its size does not link to its full size: f.png"]
    assert page_problems(dict(good, images=[dict(shrunk, fullSize=True)]), 400) == []
    assert page_problems(dict(good, images=[dict(shrunk, fullSize=False)]), 1280) == []
    assert _problems_in_events([{"method": "Runtime.consoleAPICalled",
                                 "params": {"type": "error", "args": [{"value": "boom"}]}}])


def test_no_image_over_500_kb_and_no_hidden_widget_state():
    """Page weight a reader pays for: every image under 500 KB; no saved widget state, which a
    static page cannot show."""
    assert PAGES, f"no pages under {HTML}"
    heavy = {p.name: p.stat().st_size // 1000 for p in (HTML / "_images").glob("*")
             if p.stat().st_size > 500_000}
    assert not heavy, f"images over 500 KB: {heavy}"
    for page in PAGES:
        text = (HTML / page).read_text(errors="replace")
        assert "application/vnd.jupyter.widget-state+json" not in text, page


def test_without_chromium_or_apt_the_test_says_why(monkeypatch):
    """Where Chromium cannot be installed, the page tests skip with the reason."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    exe, why = chromium.__wrapped__()
    assert exe is None and "no apt-get" in why
