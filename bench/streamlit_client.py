"""A browser session at the protocol level: what a student's browser on another machine asks of the server.

A crowd of real Chromium pages on the server's own two cores measures Chromium (a Compare page costs it
about 8 CPU seconds to load), not the server; in a lecture every student's browser runs on their own laptop.
`Session` speaks Streamlit's WebSocket protocol as the browser does: it runs the page with the link's query,
reruns each live fragment when the server asks (auto_rerun), presses buttons, and fetches its live panels'
file (one per session) at the interval the page gives it (pages/live_chart.js), counting the pictures that were new.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.request

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg


class Session:
    def __init__(self, url: str, query: str):
        self.url, self.query = url, query
        self.t0 = time.perf_counter()
        self.first_figure: float | None = None  # seconds from connecting to the first chart element
        self.charts: dict[str, str] = {}  # chart key -> its latest title (from the page or its feed)
        self.updates: dict[str, list[float]] = {}  # chart key -> times a new title arrived
        self.buttons: dict[str, str] = {}  # label -> widget id
        self.feeds: dict[str, dict] = {}
        self.fetches = 0
        self.fetch_errors = 0
        self.poller: asyncio.Task | None = None
        self.page_hash = ""
        self.tasks: list[asyncio.Task] = []
        self.fragments: dict[str, asyncio.Task] = {}
        self.ws = None

    # -- the page -------------------------------------------------------------------------------------
    async def open(self) -> None:
        self.t0 = time.perf_counter()
        self.ws = await websockets.connect(
            self.url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"], max_size=None
        )
        self.tasks.append(asyncio.create_task(self._read()))
        await self._rerun()

    async def close(self) -> None:
        for t in [*self.tasks, *self.fragments.values()]:
            t.cancel()
        if self.ws is not None:
            await self.ws.close()

    async def press(self, label: str, timeout: float = 60.0) -> None:
        """Press the button with this label (waits until the page has drawn it)."""
        t_end = time.perf_counter() + timeout
        while label not in self.buttons:
            if time.perf_counter() > t_end:
                raise TimeoutError(f"no button '{label}'")
            await asyncio.sleep(0.05)
        await self._rerun(trigger=self.buttons[label])

    def steps(self) -> dict[str, int]:
        """Panel name -> the step its latest title shows ('vae · step 1,234')."""
        out = {}
        for title in self.charts.values():
            if " · step " in title:
                name, step = title.split(" · step ", 1)
                out[name] = int(step.split()[0].replace(",", ""))
        return out

    # -- the protocol ---------------------------------------------------------------------------------
    async def _rerun(self, fragment: str = "", trigger: str | None = None) -> None:
        m = BackMsg()
        r = m.rerun_script
        r.query_string, r.page_script_hash = self.query, self.page_hash
        if fragment:
            r.fragment_id, r.is_auto_rerun = fragment, True
        if trigger:
            w = r.widget_states.widgets.add()
            w.id, w.trigger_value = trigger, True
        await self.ws.send(m.SerializeToString())

    async def _auto(self, fragment: str, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self._rerun(fragment=fragment)
            except websockets.ConnectionClosed:
                return

    def _title(self, key: str, spec: dict) -> None:
        layout = spec.get("layout") or {}
        title = layout.get("title") or {}
        text = title.get("text", "") if isinstance(title, dict) else str(title)
        if self.charts.get(key) != text:
            self.charts[key] = text
            self.updates.setdefault(key, []).append(time.perf_counter())

    async def _read(self) -> None:
        while True:
            try:
                raw = await self.ws.recv()
            except websockets.ConnectionClosed:
                return
            f = ForwardMsg()
            f.ParseFromString(raw)
            kind = f.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = f.new_session.page_script_hash
            elif kind == "auto_rerun":
                fid = f.auto_rerun.fragment_id
                if fid in self.fragments:
                    self.fragments[fid].cancel()
                self.fragments[fid] = asyncio.create_task(self._auto(fid, f.auto_rerun.interval))
            elif kind == "stop_auto_rerun":
                for t in self.fragments.values():
                    t.cancel()
                self.fragments.clear()
            elif kind == "delta" and f.delta.WhichOneof("type") == "new_element":
                e = f.delta.new_element
                which = e.WhichOneof("type")
                if which == "button":
                    self.buttons[e.button.label] = e.button.id
                elif which in ("bidi_component", "plotly_chart"):
                    if self.first_figure is None:
                        self.first_figure = time.perf_counter() - self.t0
                    if which == "bidi_component":
                        self._component(e.bidi_component)

    def _component(self, c) -> None:
        key = c.id.rsplit("-", 1)[-1]
        try:
            spec = json.loads(c.json)
            spec = json.loads(spec) if isinstance(spec, str) else spec
        except ValueError:
            return
        if not isinstance(spec, dict):
            return
        self._title(key, spec)
        if spec.get("feed"):
            self.feeds[key] = {
                "url": spec["feed"],
                "live": bool(spec.get("live")),
                "every": spec.get("every", 200),
            }
            if self.poller is None:
                self.poller = asyncio.create_task(self._poll())
                self.tasks.append(self.poller)

    async def _poll(self) -> None:
        """What live_chart.js does: every `every` ms, fetch each file that a moving panel's address names once,
        and give each of those panels its picture from it."""
        while True:
            live = {k: f for k, f in list(self.feeds.items()) if f["live"]}
            await asyncio.sleep(min([f["every"] for f in live.values()] or [200]) / 1000)
            files: dict[str, list[tuple[str, str]]] = {}
            for key, f in live.items():
                file, _, panel = f["url"].partition("#")  # one file holds the session's panels
                files.setdefault(file, []).append((key, panel))
            for file, panels in files.items():
                try:
                    raw = await asyncio.to_thread(_get, self.url + "/" + file)
                    self.fetches += 1
                    pictures = json.loads(raw).get("panels", {})
                except (OSError, ValueError, http.client.HTTPException):
                    # not written yet, or gone with its runs: the browser keeps the last pictures too
                    self.fetch_errors += 1
                    continue
                for key, panel in panels:
                    if panel in pictures:
                        self._title(key, pictures[panel])


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()
