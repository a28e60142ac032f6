// Pulsyon's dashboard: one page, routes in the URL's hash, data from the
// server's JSON API (/api/v1/) and live incident updates from its event
// stream. Everything shown is built with DOM calls (never from HTML text),
// so no server data is ever read as markup.
"use strict";

(() => {
  const state = {
    me: null,            // the session: {tenant, actor, role, may_respond}
    range: "1h",
    incidents: new Map(), // id -> incident, the live list
    stream: null,
    lastSeq: 0,
    refresh: null,       // timer of the page's own refresh
    charts: [],
  };

  // ---------- small helpers ----------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const main = () => document.getElementById("main");
  const fmt = {
    ms: (v) => (v === null || v === undefined ? "—" : v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(1) + " ms"),
    pct: (v) => (v * 100).toFixed(2) + "%",
    rate: (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)),
    int: (v) => Number(v).toLocaleString("en-US"),
    since: (iso) => {
      if (!iso) return "—";
      const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
      if (s < 60) return Math.round(s) + " s ago";
      if (s < 3600) return Math.round(s / 60) + " min ago";
      if (s < 86400) return (s / 3600).toFixed(1) + " h ago";
      return (s / 86400).toFixed(1) + " d ago";
    },
    time: (iso) => (iso ? new Date(iso).toLocaleString() : "—"),
  };
  const statusWord = { healthy: "Healthy", degraded: "Degraded", down: "Down", unknown: "No data" };
  const pill = (cls, text, title) => el("span", { class: "pill " + cls, title: title || null }, text);

  class HttpError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  async function api(path, options) {
    const init = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    if (init.body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(init.body);
    }
    const res = await fetch(path, init);
    if (res.status === 204) return null;
    let body = null;
    try { body = await res.json(); } catch (_) { body = null; }
    if (!res.ok) {
      if (res.status === 401 && !path.startsWith("/api/v1/session")) {
        loggedOut("Your session ended: log in again.");
      }
      throw new HttpError(res.status, (body && body.error) || res.statusText, res.headers.get("retry-after"));
    }
    return body;
  }

  function setLive(on, text) {
    const live = document.getElementById("live");
    live.hidden = false;
    live.className = "live " + (on ? "on" : "off");
    live.textContent = text;
  }

  function stopPage() {
    if (state.refresh) clearInterval(state.refresh);
    state.refresh = null;
    for (const c of state.charts) c.destroy();
    state.charts = [];
  }

  // ---------- session ----------
  function showSession() {
    const who = document.getElementById("who");
    const nav = document.getElementById("nav");
    const logout = document.getElementById("logout");
    if (state.me) {
      who.textContent = `${state.me.actor} · ${state.me.tenant} · ${state.me.role}`;
      nav.hidden = false;
      document.getElementById("nav-notifications").hidden = state.me.role !== "admin";
      logout.hidden = false;
    } else {
      who.textContent = "";
      nav.hidden = true;
      logout.hidden = true;
      document.getElementById("live").hidden = true;
    }
  }

  function loggedOut(message) {
    state.me = null;
    closeStream();
    stopPage();
    showSession();
    renderLogin(message);
  }

  function renderLogin(message) {
    const error = el("p", { class: "error", role: "alert", id: "login-error" }, message || "");
    let mode = "password";
    const tenant = el("input", { name: "tenant", autocomplete: "organization", required: true });
    const user = el("input", { name: "user", autocomplete: "username", required: true });
    const password = el("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
    const key = el("input", { name: "api_key", type: "password", autocomplete: "off" });
    const byPassword = el("div", { class: "fields" },
      el("label", {}, "Tenant", tenant), el("label", {}, "User", user), el("label", {}, "Password", password));
    const byKey = el("div", { class: "fields", hidden: true }, el("label", {}, "API key (read scope)", key));
    const switcher = el("button", { type: "button", onclick: () => {
      mode = mode === "password" ? "key" : "password";
      byPassword.hidden = mode !== "password";
      byKey.hidden = mode === "password";
      for (const i of [tenant, user, password]) i.required = mode === "password";
      key.required = mode === "key";
      switcher.textContent = mode === "password" ? "Use an API key instead" : "Use a password instead";
    } }, "Use an API key instead");
    const submit = el("button", { type: "submit", class: "primary" }, "Log in");
    const form = el("form", { class: "login panel", "aria-labelledby": "login-title" },
      el("h1", { id: "login-title" }, "Log in to Pulsyon"), byPassword, byKey, error,
      el("div", { class: "actions" }, submit, switcher));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      submit.disabled = true;
      const body = mode === "password"
        ? { tenant: tenant.value.trim(), user: user.value.trim(), password: password.value }
        : { api_key: key.value.trim() };
      try {
        state.me = await api("/api/v1/session", { method: "POST", body });
        password.value = "";
        key.value = "";
        showSession();
        route();
      } catch (e) {
        error.textContent = e.status === 429
          ? `Too many failed logins. Try again in ${e.retryAfter || "a few"} seconds.`
          : e.status === 401 ? "Wrong tenant, user or password." : e.message;
      } finally {
        submit.disabled = false;
      }
    });
    main().replaceChildren(form);
    (mode === "password" ? tenant : key).focus();
  }

  // ---------- live incidents ----------
  function closeStream() {
    if (state.stream) state.stream.close();
    state.stream = null;
  }

  async function loadIncidents() {
    const body = await api("/api/v1/incidents");
    state.incidents = new Map(body.incidents.map((i) => [i.id, i]));
    state.lastSeq = body.seq;
    openStream(body.seq);
    onIncidentsChanged();
  }

  function openStream(after) {
    closeStream();
    const source = new EventSource("/api/v1/incidents/stream?after=" + encodeURIComponent(after));
    state.stream = source;
    source.addEventListener("open", () => setLive(true, "Live"));
    source.addEventListener("update", (ev) => {
      const u = JSON.parse(ev.data);
      state.lastSeq = u.seq;
      const old = state.incidents.get(u.incident.id);
      const inc = u.incident;
      if (!inc.explanation && old) inc.explanation = old.explanation;
      state.incidents.set(inc.id, inc);
      onIncidentsChanged(u);
    });
    source.addEventListener("resync", () => {
      // The server cannot resume: read the list again and follow from there.
      closeStream();
      loadIncidents().catch(() => setLive(false, "Offline"));
    });
    source.addEventListener("ended", () => loggedOut("Your session ended: log in again."));
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        setLive(false, "Offline");
        // Refused (the session ended?) or gone: ask who we are, then retry.
        setTimeout(() => {
          if (state.stream !== source) return;
          api("/api/v1/session").then((who) => {
            if (who.logged_in) openStream(state.lastSeq);
            else loggedOut("Your session ended: log in again.");
          }).catch(() => {});
        }, 2000);
      } else {
        setLive(false, "Reconnecting…");
      }
    });
  }

  const listeners = new Set();
  function onIncidentsChanged(update) {
    for (const f of listeners) f(update);
  }

  function incidentOrder(a, b) {
    const rank = { open: 0, acknowledged: 1, resolved: 2 };
    const sev = { critical: 0, warning: 1, info: 2 };
    return (rank[a.status] - rank[b.status]) || (sev[a.severity] - sev[b.severity])
      || (Date.parse(b.opened_at) - Date.parse(a.opened_at));
  }

  function actionButtons(inc, after) {
    if (!state.me || !state.me.may_respond || inc.status === "resolved") return null;
    const note = el("textarea", { rows: 1, "aria-label": `Note for incident ${inc.id}`, placeholder: "Note (optional)" });
    const act = async (what) => {
      for (const b of wrap.querySelectorAll("button")) b.disabled = true;
      try {
        await api(`/api/v1/incidents/${inc.id}/${what}`, { method: "POST", body: { note: note.value } });
        if (after) after();
      } catch (e) {
        msg.textContent = e.message;
        for (const b of wrap.querySelectorAll("button")) b.disabled = false;
      }
    };
    const msg = el("span", { class: "error", role: "alert" });
    const wrap = el("div", { class: "actions" }, note,
      inc.status === "open" ? el("button", { type: "button", class: "primary", "data-action": "acknowledge",
        onclick: () => act("acknowledge") }, "Acknowledge") : null,
      el("button", { type: "button", class: "danger", "data-action": "resolve", onclick: () => act("resolve") }, "Resolve"),
      msg);
    return wrap;
  }

  function incidentsTable(list, compact) {
    compact = compact || !(state.me && state.me.may_respond);
    if (!list.length) return el("p", { class: "muted", id: "no-incidents" }, "No live incidents.");
    const rows = list.map((i) => el("tr", { "data-incident": i.id, "data-status": i.status },
      el("td", {}, pill(i.severity, i.severity)),
      el("td", {}, el("a", { href: "#/service/" + encodeURIComponent(i.service) }, i.service)),
      el("td", {}, el("a", { href: "#/incident/" + i.id }, i.title),
        i.explanation ? el("div", { class: "reason" }, i.explanation) : null),
      el("td", {}, pill(i.status, i.status), i.acknowledged_by && i.status === "acknowledged"
        ? el("div", { class: "reason" }, "by " + i.acknowledged_by) : null),
      el("td", { class: "num", title: fmt.time(i.opened_at) }, fmt.since(i.opened_at)),
      compact ? null : el("td", {}, actionButtons(i))));
    return el("div", { class: "table-wrap" }, el("table", { id: "incidents" },
      el("caption", { class: "muted", hidden: true }, "Live incidents"),
      el("thead", {}, el("tr", {}, el("th", {}, "Severity"), el("th", {}, "Service"), el("th", {}, "Incident"),
        el("th", {}, "Status"), el("th", { class: "num" }, "Since"), compact ? null : el("th", {}, "Act"))),
      el("tbody", {}, rows)));
  }

  // ---------- charts ----------
  function spark(buckets, bucketSecs, windowSecs) {
    const canvas = el("canvas", { class: "spark", width: 240, height: 56, role: "img",
      "aria-label": "Requests per bucket, errors in red" });
    const ctx = canvas.getContext("2d");
    const now = Date.now() / 1000;
    const n = Math.max(1, Math.round(windowSecs / bucketSecs));
    const start = Math.floor((now - windowSecs) / bucketSecs) * bucketSecs;
    const counts = new Array(n + 1).fill(0), errors = new Array(n + 1).fill(0);
    for (const [t, c, e] of buckets) {
      const i = Math.round((t - start) / bucketSecs);
      if (i >= 0 && i <= n) { counts[i] += c; errors[i] += e; }
    }
    const max = Math.max(1, ...counts);
    const w = canvas.width / counts.length;
    for (let i = 0; i < counts.length; i++) {
      const h = (counts[i] / max) * canvas.height;
      const eh = (errors[i] / max) * canvas.height;
      ctx.fillStyle = "#8aa4d6";
      ctx.fillRect(i * w, canvas.height - h, Math.max(1, w - 1), h);
      ctx.fillStyle = "#b42318";
      ctx.fillRect(i * w, canvas.height - eh, Math.max(1, w - 1), eh);
    }
    return canvas;
  }

  // A time chart of `series` over the last `windowSecs` (drawn once the
  // page is laid out, so that each chart takes its box's width).
  function chart(container, title, series, data, yLabel, windowSecs) {
    const box = el("div", { class: "chart" }, el("h3", {}, title));
    container.append(box);
    requestAnimationFrame(() => {
      if (!box.isConnected) return;
      if (typeof uPlot === "undefined") {
        box.append(el("p", { class: "muted" }, "Charts unavailable."));
        return;
      }
      const now = Date.now() / 1000;
      const u = new uPlot({
        width: Math.max(260, box.clientWidth - 16), height: 220,
        series: [{}].concat(series.map((s) => ({ label: s.label, stroke: s.color, width: 2,
          value: (_, v) => (v == null ? "—" : v.toFixed(2) + " " + yLabel) }))),
        axes: [{}, { label: yLabel, size: 60 }],
        scales: { x: { time: true, range: [now - windowSecs, now] } },
        legend: { live: true },
      }, data, box);
      state.charts.push(u);
    });
  }

  const windowOf = { "1h": 3600, "24h": 86400, "7d": 604800 };

  function rangeButtons(onChange) {
    return el("div", { class: "ranges", role: "group", "aria-label": "Time range" },
      ["1h", "24h", "7d"].map((r) => el("button", { type: "button", "aria-pressed": String(state.range === r),
        "data-range": r, onclick: () => { state.range = r; onChange(); } }, r)));
  }

  // The page's data, or null with its title and the error shown in `root`.
  async function pageData(root, title, path) {
    try {
      return await api(path);
    } catch (e) {
      root.replaceChildren(el("h1", {}, title), errorBox(e));
      return null;
    }
  }

  function errorBox(e) {
    return el("p", { class: "error", role: "alert" }, "Could not load: " + e.message);
  }

  // ---------- pages ----------
  async function pageServices() {
    const root = el("section", { "aria-labelledby": "services-title" });
    const services = el("div", { id: "services" }, el("p", { class: "muted" }, "Loading…"));
    const asOf = el("span", { class: "muted", id: "as-of" });
    const incidents = el("div", { id: "live-incidents" });
    root.append(
      el("h1", { id: "services-title" }, "Services"),
      el("div", { class: "toolbar" }, rangeButtons(() => render()), asOf),
      services,
      el("h2", {}, "Live incidents"),
      incidents);
    main().replaceChildren(root);

    let soon = null;
    const drawIncidents = (update) => {
      const list = [...state.incidents.values()].filter((i) => i.status !== "resolved").sort(incidentOrder);
      incidents.replaceChildren(incidentsTable(list, false));
      // An update means the figures moved: read them again (once for a burst).
      if (update && !soon) soon = setTimeout(() => { soon = null; if (root.isConnected) load(); }, 1000);
    };
    listeners.clear();
    listeners.add(drawIncidents);
    drawIncidents();

    async function load() {
      try {
        const body = await api("/api/v1/overview?range=" + state.range);
        asOf.textContent = body.as_of ? "Figures as of " + fmt.time(body.as_of) : "";
        if (!body.services.length) {
          services.replaceChildren(el("p", { class: "muted" }, "No services yet: send events to see them here."));
          return;
        }
        const rows = body.services.map((s) => el("tr", { "data-service": s.service, "data-status": s.status },
          el("th", { scope: "row" }, el("a", { href: "#/service/" + encodeURIComponent(s.service) }, s.service)),
          el("td", {}, pill(s.status, statusWord[s.status], s.reason), el("div", { class: "reason" }, s.reason)),
          el("td", { class: "num hide-narrow" }, fmt.rate(s.requests_per_s)),
          el("td", { class: "num", "data-value": s.error_rate }, fmt.pct(s.error_rate)),
          el("td", { class: "num hide-narrow", "data-value": s.latency.p50_ms }, fmt.ms(s.latency.p50_ms)),
          el("td", { class: "num", "data-col": "p95", "data-value": s.latency.p95_ms }, fmt.ms(s.latency.p95_ms)),
          el("td", { class: "num hide-narrow", "data-value": s.latency.p99_ms }, fmt.ms(s.latency.p99_ms)),
          el("td", { class: "num hide-narrow" }, s.uptime_percent.toFixed(2) + "%"),
          el("td", { class: "hide-narrow" }, spark(s.buckets, body.bucket_secs, body.window_secs))));
        services.replaceChildren(el("div", { class: "table-wrap" }, el("table", { id: "service-table" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Service"), el("th", { scope: "col" }, "Status"),
            el("th", { class: "num hide-narrow", scope: "col" }, "Req/s"), el("th", { class: "num", scope: "col" }, "Errors"),
            el("th", { class: "num hide-narrow", scope: "col" }, "p50"), el("th", { class: "num", scope: "col" }, "p95"),
            el("th", { class: "num hide-narrow", scope: "col" }, "p99"), el("th", { class: "num hide-narrow", scope: "col" }, "Uptime"),
            el("th", { class: "hide-narrow", scope: "col" }, "Recent"))),
          el("tbody", {}, rows))));
      } catch (e) {
        services.replaceChildren(errorBox(e));
      }
    }
    function render() {
      for (const b of root.querySelectorAll("[data-range]")) b.setAttribute("aria-pressed", String(b.dataset.range === state.range));
      load();
    }
    await load();
    state.refresh = setInterval(load, 15000);
  }

  async function pageService(name) {
    const root = el("section", {});
    main().replaceChildren(root);
    listeners.clear();
    async function load() {
      for (const c of state.charts) c.destroy();
      state.charts = [];
      const body = await pageData(root, name, `/api/v1/services/${encodeURIComponent(name)}?range=${state.range}`);
      if (!body) return;
      const h = body.health;
      const charts = el("div", { class: "charts" });
      root.replaceChildren(
        el("p", {}, el("a", { href: "#/" }, "← Services")),
        el("h1", {}, name, " ", h ? pill(h.status, statusWord[h.status]) : null),
        h ? el("p", { class: "reason" }, h.reason) : null,
        el("div", { class: "toolbar" }, rangeButtons(load)),
        h ? el("div", { class: "cards" },
          card("Requests/s", fmt.rate(h.requests_per_s)), card("Errors", fmt.pct(h.error_rate)),
          card("p50", fmt.ms(h.latency.p50_ms)), card("p95", fmt.ms(h.latency.p95_ms)),
          card("p99", fmt.ms(h.latency.p99_ms)), card("Uptime", h.uptime_percent.toFixed(2) + "%")) : null,
        charts,
        el("h2", {}, "Endpoints"),
        table(["Endpoint", "Requests", "Errors", "p50", "p95", "p99"], body.endpoints.map((e) => [
          e.endpoint, fmt.int(e.requests), fmt.pct(e.error_rate), fmt.ms(e.latency.p50_ms),
          fmt.ms(e.latency.p95_ms), fmt.ms(e.latency.p99_ms)]), "endpoints", [1, 2, 3, 4, 5]),
        el("h2", {}, "Recent 5xx"),
        body.recent_errors.length ? table(["Time", "Endpoint", "Method", "Status", "Latency", "Trace"],
          body.recent_errors.map((e) => [fmt.time(e.time), e.endpoint, e.method, e.status_code, fmt.ms(e.latency_ms), e.trace_id || "—"]),
          "recent-errors", [3, 4]) : el("p", { class: "muted" }, "No 5xx in this range."),
        el("h2", {}, "Incidents"),
        incidentsTable(body.incidents, true));
      const t = body.series.map((p) => p.t);
      chart(charts, "Error rate", [{ label: "5xx %", color: "#b42318" }], [t, body.series.map((p) => p.error_rate * 100)], "%", windowOf[state.range]);
      chart(charts, "Latency", [
        { label: "p50", color: "#1d7f4e" }, { label: "p95", color: "#2b59c3" }, { label: "p99", color: "#9a6400" }],
      [t, body.series.map((p) => p.latency.p50_ms), body.series.map((p) => p.latency.p95_ms), body.series.map((p) => p.latency.p99_ms)], "ms", windowOf[state.range]);
    }
    await load();
    state.refresh = setInterval(load, 30000);
  }

  function card(k, v) {
    return el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: "v" }, v));
  }

  function table(head, rows, id, numeric) {
    const num = new Set(numeric || []);
    return el("div", { class: "table-wrap" }, el("table", { id },
      el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { scope: "col", class: num.has(i) ? "num" : null }, h)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { class: num.has(i) ? "num" : null }, c)))))));
  }

  async function pageIncident(id) {
    const root = el("section", {});
    main().replaceChildren(root);
    async function load() {
      const body = await pageData(root, "Incident " + id, "/api/v1/incidents/" + encodeURIComponent(id));
      if (!body) return;
      const i = body.incident;
      let sent = [];
      try {
        sent = (await api("/api/v1/incidents/" + encodeURIComponent(id) + "/deliveries")).deliveries;
      } catch (_) { sent = null; }
      root.replaceChildren(
        el("p", {}, el("a", { href: "#/" }, "← Services")),
        el("h1", { id: "incident-title" }, i.title),
        el("p", {}, pill(i.severity, i.severity), " ", el("span", { id: "incident-status" }, pill(i.status, i.status)), " ",
          el("a", { href: "#/service/" + encodeURIComponent(i.service) }, i.service),
          ` · opened ${fmt.time(i.opened_at)}`,
          i.acknowledged_by ? ` · acknowledged by ${i.acknowledged_by}` : "",
          i.resolved_by ? ` · resolved by ${i.resolved_by}` : ""),
        i.explanation ? el("p", { class: "reason" }, i.explanation) : null,
        actionButtons(i, load),
        el("h2", {}, "Alerts"),
        table(["Kind", "Endpoint", "Severity", "Observed", "Baseline", "Threshold", "Explanation", "Fired", "Cleared"],
          body.alerts.map((a) => [a.kind, a.endpoint || "(service)", a.severity, a.observed.toFixed(3),
            a.baseline === null ? "none" : a.baseline.toFixed(3), a.threshold.toFixed(3), a.explanation,
            fmt.time(a.fired_at), a.cleared_at ? fmt.time(a.cleared_at) : "firing"]), "alerts", [3, 4, 5]),
        el("h2", {}, "Timeline"),
        el("ol", { class: "timeline", id: "timeline" }, body.timeline.map((u) => el("li", { "data-seq": u.seq },
          el("div", { class: "when" }, fmt.time(u.at), " · #", u.seq),
          el("strong", {}, u.kind.replace("_", " ")), u.actor ? " by " + u.actor : "",
          u.note ? el("div", {}, "“" + u.note + "”") : null,
          u.alert ? el("div", { class: "reason" }, u.alert.explanation) : null,
          (sent || []).filter((d) => d.update_seq === u.seq && d.reason === "update").map((d) =>
            el("div", { class: "sent", "data-delivery": d.id }, "→ ", d.receiver, ": ", deliveryState(d)))))),
        el("h2", {}, "Notifications"),
        silenceThis(i, load),
        sent === null ? el("p", { class: "muted" }, "Could not load the notifications.")
          : sent.length ? table(["Receiver", "Change", "Why", "State", "Attempts", "Delivered", "Last error"],
            sent.map((d) => [d.receiver, d.change, d.reason, deliveryState(d), d.attempts,
              fmt.time(d.delivered_at), d.last_error || "—"]), "deliveries", [4])
            : el("p", { class: "muted" }, "No notification was planned for this incident."));
    }
    listeners.clear();
    listeners.add((u) => { if (u && u.incident.id === id) load(); });
    await load();
  }

  // ---------- notifications ----------
  function deliveryState(d) {
    if (d.state === "suppressed") return `held by silence ${d.silence_id || "(deleted)"}`;
    if (d.digest_id) return `${d.state}, in digest ${d.digest_id}`;
    return d.state;
  }

  // What "Silence notifications" answered, per incident: the page is drawn
  // again on every update of its incident, and the answer stays shown.
  const silencedBy = new Map();

  function silenceThis(inc, after) {
    if (!state.me || !state.me.may_respond || inc.status === "resolved") return null;
    const comment = el("input", { type: "text", "aria-label": `Why silence incident ${inc.id}`, placeholder: "Why (optional)" });
    const msg = el("span", { role: "status" }, silencedBy.get(inc.id) || "");
    const button = el("button", { type: "button", "data-action": "silence", onclick: async () => {
      button.disabled = true;
      try {
        const made = await api(`/api/v1/incidents/${inc.id}/silence`, { method: "POST", body: { comment: comment.value } });
        silencedBy.set(inc.id, `Silence ${made.silence.id}: no notifications until it resolves.`);
        msg.textContent = silencedBy.get(inc.id);
        if (after) after();
      } catch (e) {
        msg.textContent = e.message;
        button.disabled = false;
      }
    } }, "Silence notifications");
    return el("div", { class: "actions" }, comment, button, msg);
  }

  function matchersText(m) {
    const parts = [];
    if (m.services && m.services.length) parts.push("service " + m.services.join(" | "));
    if (m.endpoints && m.endpoints.length) parts.push("endpoint " + m.endpoints.join(" | "));
    if (m.severities && m.severities.length) parts.push("severity " + m.severities.join(" | "));
    if (m.kinds && m.kinds.length) parts.push("rule " + m.kinds.join(" | "));
    return parts.length ? parts.join(", ") : "everything";
  }

  async function pageNotifications() {
    const root = el("section", {});
    main().replaceChildren(root);
    listeners.clear();
    async function load() {
      const body = await pageData(root, "Notifications", "/api/v1/notifications");
      if (!body) return;
      const r = body.routes;
      const expire = (s) => (!s.current || !state.me.may_respond) ? null
        : el("button", { type: "button", "data-expire": s.id, onclick: async () => {
          try {
            await api(`/api/v1/silences/${s.id}/expire`, { method: "POST" });
            load();
          } catch (e) {
            root.prepend(errorBox(e));
          }
        } }, "End now");
      root.replaceChildren(
        el("h1", {}, "Notifications"),
        el("h2", {}, "Receivers"),
        body.receivers.length ? table(["Name", "Kind", "Where", "Secret", "Last success", "Last error"],
          body.receivers.map((x) => [x.name, x.kind, x.url, x.secret_fingerprint || "—",
            x.last_success_at ? fmt.since(x.last_success_at) : "never", x.last_error || "—"]), "receivers")
          : el("p", { class: "muted" }, "No receivers: create them with Admin.CreateReceiver."),
        el("h2", {}, "Routes"),
        r.routes.length ? table(["#", "Incidents", "Receivers", "Changes", "Then", "Group window", "Escalation", "Repeat"],
          r.routes.map((x, n) => [n + 1, matchersText(x.matchers), x.receivers.join(", ") || "—",
            x.changes.length ? x.changes.join(", ") : "every change", x.continue ? "continue" : "stop",
            x.group_secs ? x.group_secs + " s" : "—",
            x.escalation.map((s) => `${Math.round(s.after_secs / 60)} min → ${s.receivers.join(", ")}`).join("; ") || "—",
            x.repeat_secs ? Math.round(x.repeat_secs / 60) + " min" : "—"]), "routes")
          : el("p", { class: "muted" }, "No routes: every change goes to every receiver."),
        el("p", { id: "route-defaults" }, "Otherwise: ", r.default_receivers.length ? r.default_receivers.join(", ") : "every receiver",
          ". Fallback when a receiver keeps failing: ", r.fallback_receiver || "none",
          r.fallback_receiver ? ` (after ${Math.round((r.fallback_after_secs || 900) / 60)} min)` : "", "."),
        el("h2", {}, "Silences"),
        body.silences.length ? table(["#", "Kind", "Incidents", "From", "Until", "By", "Why", "State", ""],
          body.silences.map((s) => [s.id, s.kind,
            s.until_resolved_incident_id ? el("a", { href: "#/incident/" + s.until_resolved_incident_id }, "incident " + s.until_resolved_incident_id)
              : matchersText(s.matchers),
            fmt.time(s.starts_at), s.ends_at ? fmt.time(s.ends_at) : (s.until_resolved_incident_id ? "it resolves" : "expired by hand"),
            s.created_by, s.comment || "—", s.current ? (s.recurrence ? `recurring (${s.recurrence.time_zone})` : "active") : "ended",
            expire(s)]), "silences")
          : el("p", { class: "muted" }, "No silences."));
    }
    await load();
  }

  // ---------- objectives ----------
  function windowName(secs) {
    return secs % 86400 === 0 ? secs / 86400 + "d" : secs % 3600 === 0 ? secs / 3600 + "h" : secs / 60 + "m";
  }

  // Burn rate per window as bars (1: the budget lasts exactly the period).
  function burnChart(o) {
    return el("ul", { class: "burns", "aria-label": `Burn rate per window of ${o.service}` },
      o.burn_rates.map((b) => el("li", {},
        el("span", { class: "burn-window" }, windowName(b.window_secs)),
        el("meter", { min: 0, max: 20, low: 1, high: 6, optimum: 0, value: Math.min(b.burn_rate, 20),
          title: `${b.burn_rate.toFixed(2)}x over ${windowName(b.window_secs)}: ${fmt.int(b.bad_requests)} bad of ${fmt.int(b.requests)}` }),
        el("span", { class: "num" }, b.burn_rate.toFixed(1) + "x"))));
  }

  async function pageObjectives() {
    const root = el("section", {});
    main().replaceChildren(root);
    listeners.clear();
    const body = await pageData(root, "Objectives", "/api/v1/objectives");
    if (!body) return;
    const what = (o) => o.kind === "latency" ? `within ${fmt.ms(o.latency_threshold_ms)}` : (o.count_4xx ? "no 4xx or 5xx" : "no 5xx");
    const runsOut = (o) => !o.exhausted_at ? "not being spent"
      : Date.parse(o.exhausted_at) <= Date.now() ? "spent" : fmt.time(o.exhausted_at);
    root.replaceChildren(
      el("h1", {}, "Objectives"),
      body.objectives.length ? table(["Service", "Promise", "Target", "Attainment", "Budget left", "Runs out", "Burn rate", "Alert"],
        body.objectives.map((o) => [
          el("a", { href: "#/service/" + encodeURIComponent(o.service) }, o.service + (o.endpoint ? " " + o.endpoint : "")),
          `${what(o)}, ${o.period_days} days`, o.target_percent + "%", o.attainment_percent.toFixed(3) + "%",
          `${o.budget_left_percent.toFixed(1)}% (${fmt.int(Math.max(0, o.budget_left_requests))} requests, ${Math.max(0, o.budget_left_minutes).toFixed(1)} min)`,
          runsOut(o), burnChart(o),
          o.alert ? pill(o.alert, o.alert === "critical" ? "page" : "ticket") : "—"]), "objectives")
        : el("p", { class: "muted" }, "No objectives: set them with Admin.SetObjective."),
      el("p", { class: "muted" }, "Counts complete up to ", body.as_of ? fmt.time(body.as_of) : "—", "."));
  }

  async function pageIngest() {
    const root = el("section", {});
    main().replaceChildren(root);
    listeners.clear();
    async function load() {
      for (const c of state.charts) c.destroy();
      state.charts = [];
      const body = await pageData(root, "Ingest", "/api/v1/ingest?range=" + state.range);
      if (!body) return;
      const t = body.total;
      const charts = el("div", { class: "charts" });
      const reasons = Object.entries(t.rejected_by_reason);
      const causes = Object.entries(t.throttled_by_cause);
      root.replaceChildren(
        el("h1", {}, "Ingest"),
        el("div", { class: "toolbar" }, rangeButtons(load)),
        el("div", { class: "cards", id: "ingest-totals" },
          card("Received", fmt.int(t.received)), card("Stored", fmt.int(t.stored)),
          card("Duplicates", fmt.int(t.duplicates)), card("Rejected", fmt.int(t.rejected)),
          card("Throttled", fmt.int(t.throttled)), card("Filtered", fmt.int(t.filtered)),
          body.queue ? card("Writer queue", `${fmt.int(Math.round(body.queue.used_bytes / 1024))} / ${fmt.int(Math.round(body.queue.capacity_bytes / 1024))} KiB`)
            : card("Writer queue", "not in this process")),
        charts,
        el("h2", {}, "Rejected by reason"),
        reasons.length ? table(["Reason", "Events"], reasons.map(([r, n]) => [r, fmt.int(n)]), "rejected", [1])
          : el("p", { class: "muted" }, "Nothing rejected in this range."),
        el("h2", {}, "Throttled by cause"),
        causes.length ? table(["Cause", "Events"], causes.map(([c, n]) => [c, fmt.int(n)]), "throttled", [1])
          : el("p", { class: "muted" }, "Nothing throttled in this range."),
        el("h2", {}, "Dead letters"),
        body.failed.length ? deadLetters(body.failed) : el("p", { class: "muted" }, "No dead letters in this range."));
      const m = body.minutes;
      chart(charts, "Outcomes per minute", [
        { label: "stored", color: "#1d7f4e" }, { label: "duplicates", color: "#5b6475" },
        { label: "rejected", color: "#b42318" }, { label: "throttled", color: "#9a6400" }, { label: "filtered", color: "#2b59c3" }],
      [m.map((x) => x.t), m.map((x) => x.stored), m.map((x) => x.duplicates), m.map((x) => x.rejected),
        m.map((x) => x.throttled), m.map((x) => x.filtered)], "events", Math.min(86400, windowOf[state.range]));
    }
    await load();
    state.refresh = setInterval(load, 15000);
  }

  function deadLetters(list) {
    const rows = list.map((f) => {
      const out = el("pre", { class: "payload", hidden: true, "aria-live": "polite" });
      const show = el("button", { type: "button", "aria-expanded": "false", onclick: async () => {
        if (!out.hidden) { out.hidden = true; show.setAttribute("aria-expanded", "false"); show.textContent = "Show payload"; return; }
        try {
          const d = await api("/api/v1/failed/" + f.id);
          out.textContent = `${d.truncated ? "(cut short) " : ""}${d.size_bytes} bytes\n\nhex:\n${d.payload_hex}\n\ntext:\n${d.payload_text}`;
        } catch (e) {
          out.textContent = "Could not load: " + e.message;
        }
        out.hidden = false;
        show.setAttribute("aria-expanded", "true");
        show.textContent = "Hide payload";
      } }, "Show payload");
      return el("tr", {}, el("td", {}, fmt.time(f.received_at)), el("td", {}, f.reason),
        el("td", {}, f.message), el("td", { class: "hide-narrow" }, f.producer_id),
        el("td", { class: "num" }, fmt.int(f.size_bytes)), el("td", {}, show, out));
    });
    return el("div", { class: "table-wrap" }, el("table", { id: "dead-letters" },
      el("thead", {}, el("tr", {}, el("th", {}, "Received"), el("th", {}, "Reason"), el("th", {}, "Message"),
        el("th", { class: "hide-narrow" }, "Producer"), el("th", { class: "num" }, "Bytes"), el("th", {}, "Payload"))),
      el("tbody", {}, rows)));
  }

  // ---------- routing ----------
  async function route() {
    stopPage();
    if (!state.me) return;
    const hash = location.hash.replace(/^#/, "") || "/";
    const parts = hash.split("/").filter(Boolean).map(decodeURIComponent);
    for (const a of document.querySelectorAll("nav a")) {
      const page = ["ingest", "notifications", "objectives"].includes(parts[0]) ? parts[0] : "services";
      const current = a.dataset.page === page;
      if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    if (parts[0] === "service" && parts[1]) await pageService(parts[1]);
    else if ((parts[0] === "incident" || parts[0] === "incidents") && parts[1]) await pageIncident(parts[1]);
    else if (parts[0] === "notifications") await pageNotifications();
    else if (parts[0] === "objectives") await pageObjectives();
    else if (parts[0] === "ingest") await pageIngest();
    else await pageServices();
    if (!state.stream) loadIncidents().catch(() => setLive(false, "Offline"));
    document.body.dataset.ready = "true";
  }

  async function start() {
    document.getElementById("logout").addEventListener("click", async () => {
      try { await api("/api/v1/session", { method: "DELETE" }); } catch (_) { /* gone already */ }
      loggedOut("You logged out.");
    });
    window.addEventListener("hashchange", () => { main().focus(); route(); });
    try {
      const who = await api("/api/v1/session");
      state.me = who.logged_in ? who : null;
    } catch (_) {
      state.me = null;
    }
    showSession();
    if (state.me) route(); else renderLogin("");
  }

  start();
})();
