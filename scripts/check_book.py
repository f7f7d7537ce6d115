"""Open the built book in headless Chromium and fail on what a reader would see broken.

Serves ``_build/html`` on a free local port and loads ``index.html`` and every page listed in
``_toc.yml``. Problems, one line each naming the page: a page that does not load, a broken
image, a JavaScript console error, an error output in a notebook cell, and a chapter without
its Colab launch link to ``notebooks/<chapter>.ipynb`` on the configured branch. Outside
resources that do not answer (no network, e.g. the MathJax CDN) are listed, not failed.
Selenium drives the given chromedriver (Debian ``chromium-driver``); it never downloads one.

Usage: python scripts/check_book.py [--chrome PATH] [--chromedriver PATH] [--timeout SECONDS]
                                    [--book FOLDER]
Exit status: 0 all good, 1 problems found, 2 the book or the browser is missing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from toc import toc_files

ROOT = Path(__file__).resolve().parent.parent

# Every image finished loading (lazy ones forced to load), or the wait timed out.
IMAGES_SETTLED = """
document.querySelectorAll('img').forEach(img => { img.loading = 'eager'; });
return Array.from(document.images).every(img => img.complete);
"""
BROKEN_IMAGES = """
return Array.from(document.images)
  .filter(img => img.complete && img.naturalWidth === 0)
  .map(img => img.getAttribute('src'));
"""
# Console errors that are not the book's own.
NOT_THE_BOOK = (
    # Jupyter Book 1.0.4 pages carry sphinx-thebe 0.3.1's config script twice; the first works.
    "Identifier 'THEBE_JS_URL' has already been declared",
    # The browser asks every site for a favicon; the book has none.
    "/favicon.ico - Failed to load resource",
)
# Jupyter Book renders a cell's error output as <div class="output traceback ...">.
ERROR_OUTPUTS = """
return Array.from(document.querySelectorAll('div.output.traceback'))
  .map(div => div.innerText.trim().split('\\n').pop());
"""


def toc_pages(book: Path) -> list[str]:
    """HTML paths (relative to ``_build/html``) of the root and every file in ``_toc.yml``."""
    root = str(yaml.safe_load((book / "_toc.yml").read_text())["root"])
    return [f"{Path(f).with_suffix('')}.html" for f in [root, *toc_files(book / "_toc.yml")]]


def colab_link(book: Path, page: str) -> str | None:
    """The Colab launch URL a chapter page must carry, or None if it is not a notebook."""
    if not page.startswith("notebooks/"):
        return None
    cfg = yaml.safe_load((book / "_config.yml").read_text())
    repo, launch = cfg.get("repository", {}), cfg.get("launch_buttons", {})
    if not launch.get("colab_url"):
        return None
    org_repo = repo["url"].rstrip("/").removeprefix("https://github.com/")
    book = str(repo.get("path_to_book", "")).strip("/")
    path = f"{book}/{page}" if book else page
    return (f"{launch['colab_url'].rstrip('/')}/github/{org_repo}/blob/"
            f"{repo.get('branch', 'main')}/{Path(path).with_suffix('.ipynb')}")


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging each request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    """Ignores clients that hang up mid-file (the browser cancels requests it no longer needs)."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def start_server(folder: Path) -> ThreadingHTTPServer:
    """Serve ``folder`` on 127.0.0.1 at a free port, in a daemon thread."""
    server = QuietServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_browser(chrome: str, chromedriver: str, timeout: int) -> webdriver.Chrome:
    """Headless Chromium through the given chromedriver, with the console log captured."""
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(timeout)
    return driver


def check_page(driver: webdriver.Chrome, base: str, page: str, timeout: int,
               offline: set[str], colab: str | None) -> list[str]:
    """Problems of one page, each a short phrase.

    Args:
        driver: the browser.
        base: URL of the served ``_build/html``.
        page: path of the page under ``_build/html``.
        timeout: seconds to wait for the page and its images.
        offline: collects the hosts of outside resources that did not answer (no network).
        colab: the Colab launch link the page must carry, if any.

    Returns:
        The problems found, empty if none.
    """
    url = f"{base}/{page}"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            pass
    except (urllib.error.URLError, OSError) as exc:
        return [f"does not load ({getattr(exc, 'code', None) or exc})"]
    try:
        driver.get_log("browser")  # drop what earlier pages left
        driver.get(url)
    except WebDriverException as exc:
        return [f"does not load in the browser ({exc.msg})"]
    deadline = time.monotonic() + timeout
    while not driver.execute_script(IMAGES_SETTLED) and time.monotonic() < deadline:
        time.sleep(0.2)
    problems = [f"broken image {src}" for src in driver.execute_script(BROKEN_IMAGES)]
    problems += [f"error output in a cell: {last}"
                 for last in driver.execute_script(ERROR_OUTPUTS)]
    for entry in driver.get_log("browser"):
        message = entry["message"]
        if entry["level"] != "SEVERE" or any(known in message for known in NOT_THE_BOOK):
            continue
        if "net::ERR_" in message and not message.startswith(base):
            offline.add(urllib.parse.urlsplit(message.split()[0]).netloc)
        else:
            problems.append(f"console error: {message}")
    if colab and not driver.find_elements("css selector", f'a[href="{colab}"]'):
        problems.append(f"no Colab launch link to {colab}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chrome", default=shutil.which("chromium"),
                        help="Chromium binary (default: chromium on PATH)")
    parser.add_argument("--chromedriver", default=shutil.which("chromedriver"),
                        help="chromedriver binary (default: chromedriver on PATH)")
    parser.add_argument("--timeout", type=int, default=30, help="seconds per page")
    parser.add_argument("--book", type=Path, default=ROOT,
                        help="folder with _toc.yml, _config.yml and _build/html (default: here)")
    args = parser.parse_args()
    html = args.book / "_build" / "html"
    missing = [] if (html / "index.html").exists() else \
        [f"{html / 'index.html'} is missing: run 'make book' first"]
    for name, path in (("Chromium", args.chrome), ("chromedriver", args.chromedriver)):
        if not path or not Path(path).exists():
            missing.append(f"{name} not found ({path or 'not on PATH'}): run 'make browser' "
                           "(sudo apt-get install chromium chromium-driver)")
    if missing:
        print(f"check_book: {missing[0]}", file=sys.stderr)
        sys.exit(2)
    pages = ["index.html", *toc_pages(args.book)]
    server = start_server(html)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    driver = start_browser(args.chrome, args.chromedriver, args.timeout)
    offline: set[str] = set()
    try:
        problems = [f"{page}: {p}" for page in pages
                    for p in check_page(driver, base, page, args.timeout, offline,
                                        colab_link(args.book, page))]
    finally:
        driver.quit()
        server.shutdown()
    if offline:
        print(f"check_book: not checked, no network: {', '.join(sorted(offline))}")
    for line in problems:
        print(f"check_book: {line}")
    if problems:
        sys.exit(1)
    print(f"check_book: {len(pages)} pages OK ({', '.join(pages)})")


if __name__ == "__main__":
    main()
