// pickup's status page. It reads and writes through the Pinning Service API
// with the tenant's token, which it keeps in sessionStorage only: the
// gateway reads no cookie, and the token never goes into a URL. Whatever
// comes from the API is put on the page as text, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "pickup.token";
  const STATUSES = "queued,pinning,pinned,failed";
  const LIST_LIMIT = 50;
  const body = document.body;
  const pollMs = Number(body.dataset.pollMs) || 1000;
  const throughputEvery = Number(body.dataset.throughputEvery) || 10;
  const $ = (id) => document.getElementById(id);

  let timer = null;
  let ticks = 0;
  let selected = null; // request id whose timeline is shown
  let selectedFinal = false; // its timeline ended: pinned or failed
  const rates = new Map(); // request id -> {bytes, at, rate}

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  // api sends a request with the bearer token and returns the JSON answer,
  // or throws an APIError with the API's reason and details.
  async function api(method, path, payload) {
    const headers = { "Authorization": "Bearer " + token() };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    const resp = await fetch(path, init);
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!resp.ok) {
      const err = data && data.error;
      const msg = err ? err.reason + (err.details ? ": " + err.details : "") : resp.status + " " + resp.statusText;
      throw new APIError(resp.status, msg);
    }
    return data;
  }

  function showError(msg) {
    const el = $("error");
    el.textContent = msg || "";
    el.hidden = !msg;
  }

  // el makes an element with a class and text.
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // remaining writes whole seconds still to go as the API's status
  // details do: 12s, 4m05s, 3h20m.
  function remaining(sec) {
    const pad = (n) => String(n).padStart(2, "0");
    if (sec < 60) return sec + "s";
    if (sec < 3600) return Math.floor(sec / 60) + "m" + pad(sec % 60) + "s";
    const m = Math.ceil(sec / 60);
    return Math.floor(m / 60) + "h" + pad(m % 60) + "m";
  }

  function bytes(n) {
    n = Number(n) || 0;
    if (n < 1024) return n + " B";
    const units = "KMGTPE";
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
    return n.toFixed(1) + " " + units[i] + "iB";
  }

  function clock(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const p = (x) => String(x).padStart(2, "0");
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  function when(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    return d.toISOString().slice(0, 10) + " " + clock(iso);
  }

  // ---- signing in and out ----

  function signedIn(yes) {
    $("signin").hidden = yes;
    $("app").hidden = !yes;
    $("signout").hidden = !yes;
    if (timer) { clearInterval(timer); timer = null; }
    if (yes) {
      ticks = 0;
      tick();
      timer = setInterval(tick, pollMs);
    } else {
      $("pins").tBodies[0].replaceChildren();
      $("timeline").hidden = true;
      selected = null;
      $("token").focus();
    }
  }

  function signOut(msg) {
    sessionStorage.removeItem(TOKEN_KEY);
    signedIn(false);
    showError(msg);
  }

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("token");
    const value = input.value.trim();
    input.value = "";
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    try {
      await api("GET", "/pins?limit=1");
      showError("");
      signedIn(true);
    } catch (e) {
      signOut(e.status === 401 ? "That token was refused." : "Could not sign in: " + e.message);
    }
  });

  $("signout").addEventListener("click", () => signOut(""));

  // ---- adding a pin ----

  $("add-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const cid = $("add-cid").value.trim();
    const name = $("add-name").value.trim();
    if (!cid) return;
    const pin = { cid };
    if (name) pin.name = name;
    try {
      const ps = await api("POST", "/pins", pin);
      $("add-cid").value = "";
      $("add-name").value = "";
      showError("");
      select(ps.requestid);
      await refresh();
    } catch (e) {
      failed(e, "Could not pin: ");
    }
  });

  function failed(e, prefix) {
    if (e.status === 401) signOut("The token was refused (revoked?): sign in again.");
    else showError(prefix + e.message);
  }

  // ---- the pins ----

  let busy = false; // a slow answer must not pile polls up behind it

  async function tick() {
    if (!token() || busy) return;
    busy = true;
    const n = ticks++;
    try {
      await refresh();
      if (n % throughputEvery === 0) await drawThroughput();
    } catch (e) {
      failed(e, "");
    } finally {
      busy = false;
    }
  }

  async function refresh() {
    const res = await api("GET", "/pins?status=" + STATUSES + "&limit=" + LIST_LIMIT);
    showError("");
    renderPins(res);
    if (selected && !selectedFinal) await showTimeline(selected);
  }

  function renderPins(res) {
    const tbody = $("pins").tBodies[0];
    const rows = new Map();
    for (const tr of tbody.rows) rows.set(tr.dataset.requestid, tr);
    const order = [];
    for (const ps of res.results) {
      let tr = rows.get(ps.requestid);
      if (!tr) {
        tr = el("tr");
        tr.dataset.requestid = ps.requestid;
        tr.addEventListener("click", () => select(ps.requestid));
      }
      fillRow(tr, ps);
      order.push(tr);
      rows.delete(ps.requestid);
    }
    tbody.replaceChildren(...order);
    for (const id of rows.keys()) rates.delete(id);
    $("pins-count").textContent = res.count > res.results.length
      ? "(newest " + res.results.length + " of " + res.count + ")" : "(" + res.count + ")";
    $("pins-empty").hidden = res.count > 0;
  }

  function fillRow(tr, ps) {
    const info = ps.info || {};
    tr.dataset.status = ps.status;
    tr.classList.toggle("selected", ps.requestid === selected);

    const name = el("td", "name", ps.pin.name || "—");
    const cid = el("td", "cid", ps.pin.cid);
    cid.title = ps.pin.cid;
    const status = el("td", "status");
    status.append(el("span", "badge " + ps.status, ps.status));
    const progress = el("td", "progress");
    progress.title = info.status_details || "";
    if (ps.status === "pinning") {
      const b = Number(info.bytes) || 0;
      const blocks = Number(info.blocks) || 0;
      progress.dataset.bytes = b;
      progress.dataset.blocks = blocks;
      // A root that declares the DAG's size (dag-pb) gives a percentage
      // and a time left (info's, at the attempt's rate so far); any other
      // shows its bytes, with a bar that only moves.
      const bar = el("div", "bar");
      const known = info.percent !== undefined && info.expected_bytes !== undefined;
      if (known) {
        progress.dataset.percent = info.percent;
        bar.classList.add("known");
        const fill = el("div", "fill");
        fill.style.width = Math.min(100, Number(info.percent) || 0) + "%";
        bar.append(fill);
      }
      progress.append(bar);
      const parts = known ? [info.percent + "% of " + bytes(info.expected_bytes)] : [];
      parts.push(bytes(b), blocks + " blocks");
      const rate = rateOf(ps.requestid, b);
      if (rate > 0) parts.push(bytes(rate) + "/s");
      if (known && Number(info.seconds_left) > 0) {
        progress.dataset.left = info.seconds_left;
        parts.push(remaining(Number(info.seconds_left)) + " left");
      }
      parts.push("attempt " + (info.attempt || 1) + (info.source ? " from " + info.source : ""));
      progress.append(el("span", "counts", parts.join(" · ")));
    } else if (ps.status === "pinned") {
      progress.append(el("span", "counts", "CAR " + bytes(info.car_bytes)));
    } else if (ps.status === "failed") {
      progress.append(el("span", "failure", (info.failure_reason || "failed") + (info.failure_message ? ": " + info.failure_message : "")));
    } else {
      progress.append(el("span", "counts", info.status_details || "queued"));
    }
    const created = el("td", "created", when(ps.created));
    tr.replaceChildren(name, cid, status, progress, created);
  }

  // rateOf follows a fetch's bytes from poll to poll: the rate between the
  // last two changes (the fetcher reports every third of its lease).
  function rateOf(id, b) {
    const now = performance.now();
    const r = rates.get(id);
    if (!r || b < r.bytes) { rates.set(id, { bytes: b, at: now, rate: 0 }); return 0; }
    if (b > r.bytes) {
      r.rate = (b - r.bytes) / ((now - r.at) / 1000);
      r.bytes = b;
      r.at = now;
    }
    return r.rate;
  }

  // ---- a pin's timeline ----

  function select(id) {
    selected = id;
    selectedFinal = false;
    for (const tr of $("pins").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.requestid === id);
    showTimeline(id).catch((e) => failed(e, "Timeline: "));
  }

  async function showTimeline(id) {
    let t;
    try {
      t = await api("GET", "/pins/" + encodeURIComponent(id) + "/timeline");
    } catch (e) {
      if (e.status === 404) { $("timeline").hidden = true; selected = null; return; }
      throw e;
    }
    if (id !== selected) return;
    selectedFinal = t.status === "pinned" || t.status === "failed";
    $("timeline").hidden = false;
    $("timeline-title").textContent = id + " · " + t.status;
    const list = $("timeline-events");
    list.replaceChildren(...collapse(t.entries).map(entryItem));
  }

  // collapse folds each run of an attempt's progress reports into its
  // last one: a long fetch reports every few seconds.
  function collapse(entries) {
    const out = [];
    for (const e of entries) {
      const last = out[out.length - 1];
      if (last && e.type === "FetchProgress" && last.type === "FetchProgress" && last.attempt === e.attempt) {
        out[out.length - 1] = Object.assign({}, e, { reports: (last.reports || 1) + 1 });
      } else {
        out.push(e);
      }
    }
    return out;
  }

  function entryItem(e) {
    const li = el("li", e.type);
    li.dataset.type = e.type;
    li.title = e.actor ? "by " + e.actor : "";
    li.append(el("span", "time", clock(e.time)), el("span", "type", e.type));
    const what = el("span", "what", e.what + (e.reports > 1 ? " (" + e.reports + " reports)" : ""));
    if (e.why) what.append(el("span", "why", "why: " + e.why));
    li.append(what);
    return li;
  }

  // ---- throughput over the last hour ----

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  async function drawThroughput() {
    const t = await api("GET", "/ui/throughput");
    const chart = $("chart");
    // Drawn at the chart's own width, so that its text is not stretched.
    const W = Math.max(240, Math.round(chart.getBoundingClientRect().width) || 600), H = 140, top = 14, bottom = 18, left = 4;
    chart.setAttribute("viewBox", "0 0 " + W + " " + H);
    const n = t.minutes.length;
    const w = (W - left) / n;
    const max = Math.max(0, ...t.minutes.map((m) => m.bytes));
    const parts = [svg("line", { class: "axis", x1: 0, y1: H - bottom, x2: W, y2: H - bottom })];
    t.minutes.forEach((m, i) => {
      if (!m.bytes) return;
      const h = Math.max(1, (m.bytes / max) * (H - top - bottom));
      const r = svg("rect", { class: "bar-rect", x: left + i * w + 1, y: H - bottom - h, width: Math.max(1, w - 2), height: h, "data-bytes": m.bytes });
      r.append(svg("title", {}, clock(m.start) + ": " + bytes(m.bytes) + " in " + m.pins + (m.pins === 1 ? " pin" : " pins")));
      parts.push(r);
    });
    parts.push(svg("text", { x: 4, y: 11 }, max ? bytes(max) + "/min" : "nothing stored in the last hour"));
    parts.push(svg("text", { x: 4, y: H - 4 }, "−60 min"));
    parts.push(svg("text", { x: W - 4, y: H - 4, "text-anchor": "end" }, "now"));
    chart.replaceChildren(...parts);
    chart.dataset.bytes = t.bytes;
    $("throughput-summary").textContent = "(" + bytes(t.bytes) + " in " + t.pins + (t.pins === 1 ? " pin" : " pins") +
      (t.partial ? "; more pins than the chart reads" : "") + ")";
  }

  signedIn(!!token());
  if (!token()) showError("");
})();
