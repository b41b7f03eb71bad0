"""Open every page of the built book in headless Chromium and check what a reader sees.

    python tests/browser/check_book.py _build/smoke/_build/html [--screenshots DIR]

Per page: every local image loads (no broken <img>, no failed request to the book's own server);
each solution of a notebook page is hidden until its "Show solution" toggle is clicked (a real
mouse click), then shown, checked against the solutions' text in the source notebook; the Colab
launch buttons of a chapter point at .../blob/<branch>/notebooks/<chapter>.ipynb, with the URL
and branch of ``_config.yml``. External hosts are made unresolvable (the check runs offline, the
same on every machine); external images such as the Colab badge are listed, not loaded.

It drives Chromium over the DevTools protocol with ``websocket-client`` (installed with Jupyter),
so it needs no Selenium or driver. The browser: ``$CHROMIUM`` or ``chromium`` on the PATH
(Debian: ``apt install chromium``).
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import nbformat
import websocket

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from mricourse.course.exercises import find_exercises  # noqa: E402
from mricourse.course.notebooks import _source, colab_url, repository  # noqa: E402

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--window-size=1280,1400",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0",
]


class Browser:
    """A headless Chromium with a fresh profile, driven over the DevTools protocol."""

    def __init__(self, executable: str, timeout: float = 30.0):
        self.profile = tempfile.mkdtemp(prefix="mricourse-chromium-")
        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file, t0 = Path(self.profile) / "DevToolsActivePort", time.time()
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.time() - t0 > timeout:
                self.close()
                raise RuntimeError(f"{executable} did not start (exit code {self.proc.returncode})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self.next_id, self.events = 0, []
        for domain in ("Page", "Network", "Runtime"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float = 30.0) -> None:
        t0 = time.time()
        while not any(e.get("method") == event for e in self.events):
            if time.time() - t0 > timeout:
                raise TimeoutError(f"no {event} within {timeout} s")
            self.ws.settimeout(max(timeout - (time.time() - t0), 0.1))
            self.events.append(json.loads(self.ws.recv()))

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails'].get('text')} in {expression[:80]}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.events = []
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        time.sleep(0.2)  # let the theme's scripts finish

    def click(self, selector: str, index: int) -> None:
        """A real mouse click in the middle of the index-th element matching selector."""
        rect = self.js(
            f"(() => {{ const e = document.querySelectorAll({json.dumps(selector)})[{index}];"
            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            "return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=rect["x"], y=rect["y"], button="left", clickCount=1)
        time.sleep(0.05)

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _solution_lines(nb) -> list[str]:
    """One telling line of each solution: the longest line of code that is not a def/docstring/comment."""
    out = []
    for ex in find_exercises(nb):
        for i in ex.solutions:
            lines = [ln.strip() for ln in _source(nb.cells[i]).splitlines()]
            body = [ln for ln in lines if ln and not ln.startswith(("def ", "class ", "#", '"""', "import ", "from ", "@"))]
            out.append(max(body, key=len))
    return out


IMAGES_JS = "[...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0}))"
TOGGLES_JS = """[...document.querySelectorAll('div.cell.tag_solution')].map(c => {
  const d = c.querySelector('details'); const code = c.querySelector('.cell_input');
  return {folded: !!d, open: d ? d.open : true, visible: !!code && (code.checkVisibility ? code.checkVisibility() : code.getClientRects().length > 0),
          prompt: d ? d.querySelector('summary').innerText.trim() : ''};
})"""


def check_page(browser: Browser, base: str, rel: str, url: str, branch: str, shots: Path | None) -> tuple[list[str], str]:
    problems, notes = [], []
    browser.open(f"{base}/{rel}")
    # images and failed requests to the book's own server
    images = browser.js(IMAGES_JS)
    local = [i for i in images if i["src"].startswith(base)]
    problems += [f"missing image {i['src'][len(base) :]}" for i in local if not i["ok"]]
    urls = {
        e["params"]["requestId"]: e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    }
    for e in browser.events:
        p = e.get("params", {})
        if e.get("method") == "Network.loadingFailed" and urls.get(p.get("requestId"), "").startswith(base):
            problems.append(f"failed to load {urls[p['requestId']][len(base) :]} ({p.get('errorText')})")
        if (
            e.get("method") == "Network.responseReceived"
            and p["response"]["url"].startswith(base)
            and p["response"]["status"] >= 400
        ):
            if not p["response"]["url"].endswith("favicon.ico"):
                problems.append(f"HTTP {p['response']['status']} for {p['response']['url'][len(base) :]}")
    notes.append(
        f"images {sum(i['ok'] for i in local)}/{len(local)} local"
        + (f" (+{len(images) - len(local)} external, offline)" if len(images) > len(local) else "")
    )
    # solutions: hidden, then shown after a click
    source = ROOT / Path(rel).with_suffix(".ipynb")
    if source.exists():
        nb = nbformat.read(source, as_version=4)
        expected = _solution_lines(nb)
        toggles = browser.js(TOGGLES_JS)
        if len(toggles) != len(expected):
            problems.append(f"{len(toggles)} solution cells on the page, {len(expected)} in {source.name}")
        text = browser.js("document.body.innerText")
        for k, t in enumerate(toggles):
            if not t["folded"] or t["open"] or t["visible"]:
                problems.append(f"solution {k + 1} is shown inline (it must be folded behind a toggle)")
            elif t["prompt"] != "Show solution":
                problems.append(f"solution {k + 1}: the toggle reads {t['prompt']!r}, expected 'Show solution'")
        problems += [f"solution text visible before a click: {line!r}" for line in expected if line in text]
        first = "document.querySelector('div.cell.tag_solution').scrollIntoView({block: 'start'})"
        if shots is not None and toggles:
            browser.js(first)
            browser.screenshot(shots / f"{Path(rel).stem}_folded.png")
        for k in range(len(toggles)):
            browser.click("div.cell.tag_solution details > summary", k)
        browser.js("Promise.all(document.getAnimations().map(a => a.finished)).then(() => true)")  # the fade-in
        after, text = browser.js(TOGGLES_JS), browser.js("document.body.innerText")
        problems += [
            f"solution {k + 1} is still hidden after a click" for k, t in enumerate(after) if not (t["open"] and t["visible"])
        ]
        problems += [f"solution text not shown after a click: {line!r}" for line in expected if line not in text]
        if expected:
            notes.append(f"{len(toggles)} solutions hidden -> shown on click")
        if shots is not None and toggles:
            browser.js(first)
            browser.screenshot(shots / f"{Path(rel).stem}_solution.png")
        # launch buttons
        want = colab_url(url, branch, source.relative_to(ROOT).as_posix())
        links = browser.js("[...document.querySelectorAll('a[href*=\"colab.research.google.com/github\"]')].map(a => a.href)")
        if not links:
            problems.append("no Colab launch button")
        problems += [f"Colab link {link} should be {want}" for link in links if link != want]
        launch = browser.js("document.querySelectorAll('.dropdown-menu a[href*=\"colab.research.google.com/github\"]').length")
        if not launch:
            problems.append("no 'Launch on Colab' button in the page header")
        notes.append(f"{len(links)} Colab link{'s' * (len(links) > 1)} -> {want.split('/github/')[1]}" if links else "")
    if shots is not None and rel.endswith("index.html"):
        browser.screenshot(shots / "index.png")
    return problems, ", ".join(n for n in notes if n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, help="the built book, e.g. _build/smoke/_build/html")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for screenshots")
    args = parser.parse_args(argv)
    exe = (
        os.environ.get("CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    if not exe:
        print(
            "check_book: no Chromium found; install it (Debian: apt install chromium) or set CHROMIUM=/path/to/chrome",
            file=sys.stderr,
        )
        return 2
    pages = sorted(
        p.relative_to(args.html).as_posix()
        for p in args.html.rglob("*.html")
        if not p.relative_to(args.html).parts[0].startswith("_")
    )
    if not pages:
        print(f"check_book: no HTML pages in {args.html}; build the book first (make book-check)", file=sys.stderr)
        return 2
    url, branch = repository(ROOT)
    server, browser, failed = serve(args.html), Browser(exe), 0
    base = f"http://127.0.0.1:{server.server_address[1]}"
    t0 = time.time()
    try:
        for rel in pages:
            problems, notes = check_page(browser, base, rel, url, branch, args.screenshots)
            print(f"{'ok  ' if not problems else 'FAIL'} {rel}: {notes}")
            for p in problems:
                print(f"     {p}")
            failed += bool(problems)
    finally:
        browser.close()
        server.shutdown()
    print(f"check_book: {len(pages)} pages in {time.time() - t0:.1f} s, {failed} failed ({Path(exe).name})")
    return int(failed > 0)


if __name__ == "__main__":
    raise SystemExit(main())
