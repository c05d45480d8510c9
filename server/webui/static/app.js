// cairn's web UI: the live parts of its pages. No library, no build step;
// the pages work without it, less the live parts.
(function () {
  "use strict";
  const ui = "/ui/";

  // toLogin sends the page to the login form, to come back here.
  function toLogin() {
    location.assign(ui + "login?next=" + encodeURIComponent(location.pathname + location.search));
  }

  // get fetches a page or JSON as the UI's own script: refused, it gets a
  // 401 without a password dialog, and the page goes to the login form.
  async function get(url, json) {
    const r = await fetch(url, { headers: { "X-Cairn-UI": "1" }, credentials: "same-origin" });
    if (r.status === 401) {
      toLogin();
      throw new Error("logged out");
    }
    if (!r.ok) {
      const body = json ? await r.json().catch(() => ({})) : {};
      throw new Error(body.error || r.status + " " + r.statusText);
    }
    return json ? r.json() : r.text();
  }

  // chart draws points [{t: ms, v}] as an SVG line, with its scale, into
  // el: the last five minutes, or since the first point and at least a
  // minute.
  function chart(el, points) {
    const ns = "http://www.w3.org/2000/svg";
    const w = el.clientWidth || 420, h = el.clientHeight || 180;
    const pad = { l: 46, r: 10, t: 10, b: 20 };
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    const add = (name, attrs, text) => {
      const e = document.createElementNS(ns, name);
      for (const k in attrs) e.setAttribute(k, attrs[k]);
      if (text !== undefined) e.textContent = text;
      svg.appendChild(e);
    };
    const now = Date.now(), most = 5 * 60 * 1000;
    const shown = points.filter((p) => p.t >= now - most);
    const span = Math.min(most, Math.max(60 * 1000, shown.length ? now - shown[0].t : 0));
    const t0 = now - span;
    const top = niceMax(Math.max(1, ...shown.map((p) => p.v)));
    const x = (t) => pad.l + ((w - pad.l - pad.r) * (t - t0)) / span;
    const y = (v) => h - pad.b - ((h - pad.t - pad.b) * v) / top;
    for (const f of [0, 0.5, 1]) {
      add("line", { class: "axis", x1: pad.l, x2: w - pad.r, y1: y(top * f), y2: y(top * f) });
      add("text", { x: pad.l - 6, y: y(top * f) + 4, "text-anchor": "end" }, short(top * f));
    }
    add("text", { x: pad.l, y: h - 5 }, Math.round(span / 1000) >= 120 ? Math.round(span / 60000) + " min ago" : Math.round(span / 1000) + " s ago");
    add("text", { x: w - pad.r, y: h - 5, "text-anchor": "end" }, "now");
    if (shown.length > 1) {
      const line = shown.map((p) => x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join(" ");
      const first = x(shown[0].t).toFixed(1), last = x(shown[shown.length - 1].t).toFixed(1);
      add("polygon", { class: "area", points: first + "," + y(0) + " " + line + " " + last + "," + y(0) });
      add("polyline", { class: "line", points: line });
    }
    el.replaceChildren(svg);
  }

  // niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5]) if (v <= m * e) return m * e;
    return 10 * e;
  }

  function short(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return Number.isInteger(v) ? String(v) : v.toFixed(1);
  }

  function setField(name, text) {
    for (const e of document.querySelectorAll('[data-field="' + name + '"]')) e.textContent = text;
  }

  function dashboard() {
    const appends = document.getElementById("chart-appends");
    const reads = document.getElementById("chart-reads");
    const latest = (ps) => (ps.length ? short(ps[ps.length - 1].v) + " now" : "");
    async function refresh() {
      let d;
      try {
        d = await get(ui + "api/dashboard", true);
      } catch (e) {
        setField("health", "unreachable: " + e.message);
        return;
      }
      setField("head", d.head >= 0 ? String(d.head) : "empty");
      setField("disk", d.disk);
      setField("health", d.health);
      setField("uptime", d.uptime);
      setField("groups", d.groups);
      setField("projections", d.projections);
      for (const e of document.querySelectorAll('[data-field="health"]')) {
        e.classList.toggle("ok", d.healthy);
        e.classList.toggle("bad", !d.healthy);
      }
      chart(appends, d.appends);
      document.getElementById("now-appends").textContent = latest(d.appends);
      if (d.readsKnown) {
        chart(reads, d.reads);
        document.getElementById("now-reads").textContent = latest(d.reads);
      }
    }
    refresh();
    setInterval(refresh, 2000);
  }

  function cell(tr, text, cls, href) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (href) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    tr.appendChild(td);
  }

  // tail shows the events of $all that the server sends, newest first.
  function tail() {
    const rows = document.getElementById("tail-rows");
    const status = document.getElementById("tail-status");
    const pause = document.getElementById("tail-pause");
    const keep = 500;
    let paused = false, pending = [], live = false;
    const setStatus = (text, cls) => {
      status.textContent = text;
      status.className = "status " + (cls || "");
    };
    const add = (e) => {
      const tr = document.createElement("tr");
      if (live) tr.className = "fresh";
      const ev = ui + "event?stream=" + encodeURIComponent(e.stream) + "&version=" + e.version;
      cell(tr, String(e.position), "num", ui + "event?position=" + e.position);
      cell(tr, e.stream, "", ui + "stream?id=" + encodeURIComponent(e.stream));
      cell(tr, String(e.version), "num", ev);
      cell(tr, e.type);
      cell(tr, e.created.replace("T", " ").replace(/\.(\d{3})\d*Z$/, ".$1 UTC"), "time");
      cell(tr, String(e.bytes), "num");
      cell(tr, e.preview, "preview");
      rows.prepend(tr);
      while (rows.children.length > keep) rows.lastElementChild.remove();
    };
    const note = (text) => {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 7;
      td.className = "small";
      td.textContent = text;
      tr.appendChild(td);
      rows.prepend(tr);
    };
    const query = new URLSearchParams(location.search);
    const src = new EventSource(ui + "api/tail?" + query.toString());
    src.onopen = () => setStatus("live", "live");
    src.onmessage = (m) => {
      const e = JSON.parse(m.data);
      if (paused) {
        pending.push(e);
        if (pending.length > keep) pending.shift();
      } else {
        add(e);
      }
    };
    src.addEventListener("live", () => (live = true));
    src.addEventListener("skipped", (m) => note("Skipped " + JSON.parse(m.data) + " events to keep up with the log."));
    src.addEventListener("failed", (m) => {
      src.close();
      setStatus("stopped: " + JSON.parse(m.data), "down");
    });
    src.onerror = () => {
      if (src.readyState === EventSource.CLOSED) {
        setStatus("disconnected: reload the page", "down");
        get(ui + "api/dashboard", true).catch(() => {}); // logged out? to the login form
      } else {
        setStatus("reconnecting…", "down");
      }
    };
    pause.addEventListener("click", () => {
      paused = !paused;
      pause.textContent = paused ? "Resume" : "Pause";
      setStatus(paused ? "paused" : "live", paused ? "" : "live");
      if (!paused) {
        pending.forEach(add);
        pending = [];
      }
    });
  }

  // refresh replaces the part of the page marked #refresh with its
  // current content every data-every milliseconds, while it is visible.
  function refresh(el) {
    const every = Number(el.dataset.every) || 5000;
    setInterval(async () => {
      if (document.visibilityState !== "visible") return;
      // Not while the user is typing into one of its fields.
      const typing = document.getElementById("refresh");
      if (typing && typing.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
      let html;
      try {
        html = await get(location.href, false);
      } catch (e) {
        return; // shown again at the next refresh
      }
      const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("refresh");
      const cur = document.getElementById("refresh");
      if (fresh && cur) {
        cur.replaceWith(fresh);
        highlight(fresh);
      }
    }, every);
  }

  // scavenge follows a running scavenge, and reloads the page when it ends.
  function scavenge(el) {
    if (el.dataset.running !== "true") return;
    const timer = setInterval(async () => {
      let s;
      try {
        s = await get(ui + "api/scavenge", true);
      } catch (e) {
        return;
      }
      setField("elapsed", s.elapsed);
      setField("now", s.now);
      setField("outcome", s.outcome);
      if (!s.running) {
        clearInterval(timer);
        location.reload();
      }
    }, 1000);
  }

  // highlight colours the JSON in pre.json blocks: keys, strings,
  // numbers, true, false and null.
  function highlight(root) {
    const token = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
    for (const pre of root.querySelectorAll("pre.json")) {
      const text = pre.textContent;
      if (text.length > 200000) continue;
      const out = document.createDocumentFragment();
      let at = 0, m;
      const span = (cls, s) => {
        const e = document.createElement("span");
        e.className = cls;
        e.textContent = s;
        out.appendChild(e);
      };
      while ((m = token.exec(text)) !== null) {
        out.appendChild(document.createTextNode(text.slice(at, m.index)));
        if (m[1] !== undefined) {
          span(m[2] ? "k" : "s", m[1]);
          if (m[2]) out.appendChild(document.createTextNode(m[2]));
        } else {
          span(m[3] !== undefined ? "b" : "n", m[0]);
        }
        at = token.lastIndex;
      }
      out.appendChild(document.createTextNode(text.slice(at)));
      pre.replaceChildren(out);
    }
  }

  function confirmations() {
    for (const b of document.querySelectorAll("button[data-confirm]")) {
      b.form.addEventListener("submit", (ev) => {
        if (!window.confirm(b.dataset.confirm)) ev.preventDefault();
      });
    }
  }

  highlight(document);
  confirmations();
  const page = document.body.dataset.page;
  if (page === "dashboard") dashboard();
  if (page === "tail") tail();
  const r = document.getElementById("refresh");
  if (r) refresh(r);
  const s = document.getElementById("scavenge");
  if (s) scavenge(s);
})();
