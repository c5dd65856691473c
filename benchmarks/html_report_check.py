"""Snakemake's HTML report in a real browser, offline: what a reader sees, and whether it calls out (JSON).

    python benchmarks/html_report_check.py reports/report.html
    python benchmarks/html_report_check.py --build [--workspace DIR] [--profile smoke]

``--build`` first makes the report in a workspace whose PDF is built, timing each step from scratch (it
removes reports/html/): ``snakemake html_report`` (the captions and training curves), then ``snakemake
--report reports/report.html``.
Then headless Chromium (Debian's ``chromium`` package) opens the file through its DevTools protocol and,
as the report's own buttons do, shows every image result (it must decode) and every result's details
(its caption text must be on screen). Every request the page makes is recorded: anything other than the
report's own file and data: URLs is a network request. Exits 1 when a check fails, 2 without Chromium.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")

# Runs in the page: each result's details, then each image result as its view button shows it.
CHECK_JS = """(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const until = async (test, ms = 5000) => {      // React renders asynchronously: poll, do not guess a delay
    for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) { const v = test(); if (v) return v; }
    return test();
  };
  const flat = s => s.replace(/\\s+/g, " ").trim();
  const plain = html => { const d = document.createElement("div"); d.innerHTML = html; return flat(d.textContent); };
  const out = {results: Object.keys(results).length, categories, images: [], images_shown: [], captions_shown: []};
  for (const [path, r] of Object.entries(results)) {
    app.showResultInfo(path);
    const words = plain(r.caption).slice(0, 80);
    if (words && await until(() => flat(document.body.innerText).includes(words))) out.captions_shown.push(path);
    if (!r.mime_type.startsWith("image/")) continue;
    out.images.push(path);
    app.setView({content: "img", contentPath: r.data_uri, resultPath: path});
    const img = await until(() => [...document.images].find(i => i.getAttribute("src") === r.data_uri));
    if (img) { try { await img.decode(); } catch (e) {} }
    if (img && img.naturalWidth > 0) out.images_shown.push(path);
  }
  return out;
})()"""


class DevTools:
    """The few Chrome DevTools Protocol calls this needs, over aiohttp's websocket client."""

    def __init__(self, ws):
        self.ws, self.next_id, self.pending, self.events = ws, 0, {}, []

    async def read(self):
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data:
                self.pending.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)

    async def call(self, method: str, timeout: float = 120, **params):
        self.next_id += 1
        reply = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = reply
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        data = await asyncio.wait_for(reply, timeout)
        if "error" in data:
            raise RuntimeError(f"{method}: {data['error']}")
        return data["result"]

    async def evaluate(self, expression: str, timeout: float = 120):
        result = await self.call("Runtime.evaluate", timeout, expression=expression, awaitPromise=True,
                                 returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while not await self.evaluate(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never satisfied: {expression}")
            await asyncio.sleep(0.1)


async def _browse(report: Path, chromium: str) -> dict:
    import aiohttp

    with tempfile.TemporaryDirectory() as user_dir:
        # --no-sandbox: Chromium refuses to run as root (CI) with its sandbox on.
        browser = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                    "--disable-background-networking", "--disable-component-update",
                                    f"--user-data-dir={user_dir}", "--remote-debugging-port=0", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(user_dir) / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not port_file.is_file() or not port_file.read_text().strip():
                if browser.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{chromium} did not start")
                await asyncio.sleep(0.1)
            port = port_file.read_text().split()[0]
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    page = next(t for t in await resp.json() if t["type"] == "page")
                async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    tools = DevTools(ws)
                    reader = asyncio.create_task(tools.read())
                    await tools.call("Network.enable")
                    await tools.call("Page.enable")
                    url = report.resolve().as_uri()
                    await tools.call("Page.navigate", url=url)
                    await tools.wait_for("document.readyState === 'complete' && typeof app !== 'undefined' && "
                                         "document.querySelector('#loading-screen').style.display === 'none'")
                    seen = await tools.evaluate(CHECK_JS, timeout=600)
                    reader.cancel()
        finally:
            browser.terminate()
            browser.wait(timeout=30)
    requests = [e["params"]["request"]["url"] for e in tools.events if e["method"] == "Network.requestWillBeSent"]
    seen["network_requests"] = [u for u in requests if u != url and not u.startswith("data:")]
    return seen


def build(workspace: Path, profile: str) -> dict:
    """Time the two steps that follow the PDF, from scratch: the html_report rule, then `snakemake --report`."""
    snakemake = str(Path(sys.executable).parent / "snakemake")
    shutil.rmtree(workspace / "reports/html", ignore_errors=True)
    times = {}
    for step, args in (("html_report_rule_s", ["--cores", "all", "html_report"]),
                       ("snakemake_report_s", ["--report", "reports/report.html"])):
        start = time.perf_counter()
        proc = subprocess.run([snakemake, *args, "--config", f"profile={profile}"], cwd=workspace,
                              capture_output=True, text=True)
        times[step] = round(time.perf_counter() - start, 2)
        if proc.returncode != 0:
            sys.exit(f"error: snakemake {' '.join(args)} failed in {workspace}:\n{proc.stderr[-3000:]}")
    times["total_s"] = round(sum(times.values()), 2)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", nargs="?", help="report to open (default: WORKSPACE/reports/report.html)")
    ap.add_argument("--workspace", type=Path, default=Path.cwd(), help="where the graph is built (default: .)")
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--build", action="store_true", help="make the report first, timing each step")
    args = ap.parse_args(argv)
    out: dict = {"profile": args.profile}
    if args.build:
        out["build"] = build(args.workspace, args.profile)
    report = Path(args.report) if args.report else args.workspace / "reports/report.html"
    if not report.is_file():
        out["error"] = f"no report at {report}: run `make report` (or pass --build) first"
        print(json.dumps(out, indent=2))
        return 2
    out["report_mb"] = round(report.stat().st_size / 2**20, 2)
    chromium = next((c for c in map(shutil.which, CHROMIUM) if c), None)
    if chromium is None:
        out["error"] = "chromium not found: apt-get install chromium"
        print(json.dumps(out, indent=2))
        return 2
    start = time.perf_counter()
    seen = asyncio.run(_browse(report, chromium))
    out["browser_s"] = round(time.perf_counter() - start, 2)
    out.update(results=seen["results"], categories={c: sorted(s) for c, s in seen["categories"].items()},
               images=len(seen["images"]), images_shown=len(seen["images_shown"]),
               images_not_shown=sorted(set(seen["images"]) - set(seen["images_shown"])),
               captions_shown=len(seen["captions_shown"]), network_requests=seen["network_requests"])
    print(json.dumps(out, indent=2))
    ok = not out["images_not_shown"] and out["captions_shown"] == out["results"] and not out["network_requests"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
