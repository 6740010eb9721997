"""Debian's Chromium driven through chromedriver's W3C WebDriver HTTP API (no browser library needed).

A small client: a session, navigation, elements by CSS selector, typing, clicking, the page source,
screenshots, downloads and extra request headers (through chromedriver's CDP passthrough). The
browser runs headless with the network off (every host name resolves to nothing; the app is on
``127.0.0.1``), so a page that tried to load anything from the internet would fail visibly.
Used by the browser test and by ``scripts/casework_screenshots.py``.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from servers import free_port

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
MISSING = None if CHROMIUM and CHROMEDRIVER else (
    "headless Chromium and chromedriver are not installed: apt-get install -y chromium chromium-driver fonts-noto-cjk "
    "(make browser)")
_ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--window-size=1400,1000"]


class Browser:
    """One chromedriver and one browser session; use as a context manager."""

    def __init__(self, downloads: Path, profile: Path) -> None:
        self.downloads = downloads
        self.profile = profile
        self.port = free_port()
        self.driver: subprocess.Popen | None = None
        self.http = httpx.Client(timeout=120)
        self.session = ""

    def __enter__(self) -> "Browser":
        assert CHROMEDRIVER and CHROMIUM, MISSING
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{self.port}"
        for _ in range(300):  # ready within seconds; a loaded CI machine may need more
            try:
                if self.http.get(f"{base}/status").json()["value"]["ready"]:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={self.profile}"],
                                   "prefs": {"download.default_directory": str(self.downloads),
                                             "download.prompt_for_download": False}}}}}
        r = self.http.post(f"{base}/session", json=caps).json()
        if "sessionId" not in r.get("value", {}):
            raise RuntimeError(f"chromedriver could not start Chromium: {r}")
        self.session = f"{base}/session/{r['value']['sessionId']}"
        self.cdp("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(self.downloads)})
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.session:
                self.http.delete(self.session)
        finally:
            if self.driver is not None:
                self.driver.terminate()
                self.driver.wait(timeout=30)
            self.http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.http.request(method, self.session + path, json=body if method == "POST" else None)
        value = r.json().get("value")
        if r.status_code >= 400:
            raise RuntimeError(f"WebDriver {method} {path}: {value}")
        return value

    def cdp(self, cmd: str, params: dict[str, Any] | None = None) -> Any:
        return self._call("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params or {}})

    def headers(self, extra: dict[str, str]) -> None:
        """Send ``extra`` headers with every request from now on (e.g. an API key)."""
        self.cdp("Network.enable")
        self.cdp("Network.setExtraHTTPHeaders", {"headers": extra})

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return str(self._call("GET", "/url"))

    @property
    def source(self) -> str:
        return str(self._call("GET", "/source"))

    def find(self, css: str) -> str:
        return self._call("POST", "/element", {"using": "css selector", "value": css})[_ELEMENT]

    def exists(self, css: str) -> bool:
        return bool(self._call("POST", "/elements", {"using": "css selector", "value": css}))

    def text(self, css: str) -> str:
        return str(self._call("GET", f"/element/{self.find(css)}/text"))

    def type(self, css: str, text: str, clear: bool = True) -> None:
        el = self.find(css)
        if clear:
            self._call("POST", f"/element/{el}/clear", {})
        self._call("POST", f"/element/{el}/value", {"text": text})

    def click(self, css: str) -> None:
        self._call("POST", f"/element/{self.find(css)}/click", {})

    def submit(self, css: str, timeout: float = 60.0) -> None:
        """Click something that loads another page (a form's button, a link) and wait for that page.

        A WebDriver click may return before the navigation it starts: wait until the old page's root
        element is stale, then until the new document is complete.
        """
        old = self.find("html")
        self.click(css)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = self.http.get(f"{self.session}/element/{old}/name")
            if r.status_code >= 400:  # stale: the page was replaced
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"clicking {css} did not load another page")
        while time.monotonic() < end:
            if self._call("POST", "/execute/sync", {"script": "return document.readyState", "args": []}) == "complete":
                return
            time.sleep(0.05)

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))

    def console(self) -> list[dict[str, Any]]:
        """The browser's console messages since the last call (errors, failed loads)."""
        try:
            return list(self._call("POST", "/se/log", {"type": "browser"}) or [])
        except RuntimeError:
            return []

    def wait_for_download(self, suffix: str, timeout: float = 60.0) -> Path:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            done = [p for p in self.downloads.glob(f"*{suffix}") if p.stat().st_size > 0]
            if done:
                return done[0]
            time.sleep(0.1)
        raise AssertionError(f"no *{suffix} file was downloaded into {self.downloads}")


class LocalServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        for _ in range(600):
            if self.server.started:
                break
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"
