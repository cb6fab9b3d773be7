// Shared helpers: API client, sticky error banner, HTML escaping, watch streams, inline SVG charts.

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

let unauthorized = () => {};
/** Called with the server's message when a request finds the session gone (401). */
export function onUnauthorized(handler) { unauthorized = handler; }

/** The server's message from an error response (GPUStack's `message`, OpenAI's `error.message`). */
export async function errorMessage(res) {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
    return body.message || body.error?.message || detail || text;
  } catch {
    return text || res.statusText || `HTTP ${res.status}`;
  }
}

export async function api(path, { method = "GET", body, form, signal, raw = false } = {}) {
  const init = { method, signal, credentials: "same-origin", headers: {} };
  if (form) {
    init.body = new URLSearchParams(form);
    init.headers["content-type"] = "application/x-www-form-urlencoded";
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const res = await fetch(path, init);
  if (!res.ok) {
    const message = await errorMessage(res);
    if (res.status === 401 && !path.startsWith("/auth/")) unauthorized(message);
    throw new ApiError(res.status, message || `${method} ${path} failed with HTTP ${res.status}`);
  }
  if (raw) return res;
  return res.status === 204 ? null : res.json();
}

/** Every item of a paginated list. */
export async function list(path, signal) {
  const sep = path.includes("?") ? "&" : "?";
  return (await api(`${path}${sep}page=-1`, { signal })).items;
}

// Errors stay on screen until the user dismisses them.
export function showError(message) {
  const box = document.getElementById("errors");
  const item = document.createElement("div");
  item.className = "error-item";
  item.innerHTML = `<span></span><button type="button" aria-label="Dismiss" title="Dismiss">×</button>`;
  item.querySelector("span").textContent = String(message);
  item.querySelector("button").onclick = () => item.remove();
  box.append(item);
}
export function clearErrors() { document.getElementById("errors").replaceChildren(); }

/** Runs a user action; its failure is shown (never swallowed). */
export async function attempt(fn, button) {
  if (button) button.disabled = true;
  try { return await fn(); }
  catch (err) { if (err.name !== "AbortError") showError(err.message); }
  finally { if (button) button.disabled = false; }
}

export const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
export const gib = (b) => ((b || 0) < 2 ** 30 && b ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${((b || 0) / 2 ** 30).toFixed(1)} GiB`);
export const pct = (v) => `${Math.round(v || 0)}%`;
export const badge = (s) => `<span class="badge ${esc(s)}">${esc(s)}</span>`;
/** A 0..1 bar; a load (utilisation, memory) over 90% turns red, progress never does. */
export const bar = (fraction, title = "", load = true) => {
  const f = Math.max(0, Math.min(1, fraction || 0));
  return `<div class="bar${load && f > 0.9 ? " hot" : ""}" title="${esc(title)}"><span style="width:${(f * 100).toFixed(1)}%"></span></div>`;
};
export const empty = (text) => `<div class="empty">${esc(text)}</div>`;
export function table(head, rows, emptyText = "None yet.") {
  if (!rows.length) return empty(emptyText);
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>${rows.join("")}</table>`;
}
export const when = (iso) => (iso ? new Date(iso.endsWith("Z") || iso.includes("+") ? iso : `${iso}Z`).toLocaleString() : "");

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
});

/**
 * A live list of rows from a `?watch=true` stream (the current rows as `created`, then changes; GPUStack
 * framing: one JSON event per chunk, blank-line separated). `onChange(rows)` runs after each batch.
 * Reconnects when the stream ends; stops when `signal` aborts.
 */
export function live(path, signal, onChange) {
  const rows = new Map();
  let pending = false;
  const changed = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; if (!signal.aborted) onChange([...rows.values()]); });
  };
  (async () => {
    while (!signal.aborted) {
      try {
        const res = await api(`${path}${path.includes("?") ? "&" : "?"}watch=true`, { signal, raw: true });
        rows.clear();
        changed();
        await readEvents(res, (ev) => {
          if (ev.type === 3) rows.delete(ev.id); else rows.set(ev.id, ev.data);
          changed();
        });
      } catch (err) {
        if (signal.aborted || err.name === "AbortError") return;
        if (err.status && err.status < 500) { showError(err.message); return; }
      }
      await sleep(1000, signal);
    }
  })();
  return rows;
}

async function readEvents(res, handle) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const chunk = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 2);
      if (chunk) handle(JSON.parse(chunk));
    }
  }
}

/** Reads a server-sent-events body, calling `onData` with each parsed `data:` JSON. */
export async function readSSE(res, onData) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const line of lines) {
      const data = line.startsWith("data:") ? line.slice(5).trim() : "";
      if (data && data !== "[DONE]") onData(JSON.parse(data));
    }
  }
}

const COLORS = ["#3a5bd9", "#1e8e3e", "#b7791f", "#c0392b", "#6b3fa0", "#00838f"];

/** A line chart as inline SVG: `series` = [{name, values}], values in [0, max], plotted left to right. */
export function lineChart(series, { max = 100, unit = "%", labels = [], emptyText = "Collecting samples; the chart appears after the second one." } = {}) {
  const W = 600, H = 160, L = 36, B = 18;
  const longest = Math.max(0, ...series.map((s) => s.values.length));
  if (longest < 2) return empty(emptyText);
  const x = (i) => L + (i * (W - L - 4)) / (longest - 1);
  const y = (v) => 4 + (H - B - 4) * (1 - Math.min(Math.max(v, 0), max) / max);
  const grid = [0, 0.5, 1].map((f) => `<line x1="${L}" x2="${W}" y1="${y(f * max)}" y2="${y(f * max)}" stroke="#e3e6ee"/>` +
    `<text x="2" y="${y(f * max) + 3}">${esc(fmtAxis(f * max, unit))}</text>`).join("");
  const xs = labels.length ? [0, longest - 1].map((i) => `<text x="${i ? W - 60 : L}" y="${H - 4}">${esc(labels[i] ?? "")}</text>`).join("") : "";
  const lines = series.map((s, n) => `<polyline fill="none" stroke-width="1.5" stroke="${COLORS[n % COLORS.length]}" points="${
    s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}"/>`).join("");
  const legend = `<div class="legend">${series.map((s, n) => `<span><i style="background:${COLORS[n % COLORS.length]}"></i>${esc(s.name)}</span>`).join("")}</div>`;
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img">${grid}${xs}${lines}</svg>${legend}`;
}

/** Horizontal bars as inline SVG: rows = [{name, value}]. */
export function barChart(rows, unit = "") {
  if (!rows.length) return "";
  const max = Math.max(...rows.map((r) => r.value), 1), H = 22 * rows.length;
  const bars = rows.map((r, i) => `<text x="0" y="${i * 22 + 14}">${esc(r.name)}</text>` +
    `<rect x="160" y="${i * 22 + 4}" height="14" width="${(340 * r.value) / max}" fill="${COLORS[i % COLORS.length]}"/>` +
    `<text x="${166 + (340 * r.value) / max}" y="${i * 22 + 15}">${esc(r.value.toLocaleString())}${esc(unit)}</text>`).join("");
  return `<svg class="chart" style="height:${H}px" viewBox="0 0 600 ${H}" preserveAspectRatio="xMinYMin meet" role="img">${bars}</svg>`;
}

function fmtAxis(v, unit) {
  if (unit === "B") return `${(v / 2 ** 30).toFixed(1)}G`;
  return `${Math.round(v)}${unit}`;
}
