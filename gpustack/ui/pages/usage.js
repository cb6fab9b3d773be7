// Usage: tokens and requests per model / user / key over a window, from the metering API.
import { api, barChart, empty, esc, lineChart, table } from "/ui/lib.js";

const WINDOWS = [["1", "Last 24 hours", "hour"], ["7", "Last 7 days", "day"], ["30", "Last 30 days", "day"]];

export async function render(root, { me, signal }) {
  const groups = [["model", "Model"], ...(me.is_admin ? [["user", "User"]] : []), ["api_key", "API key"]];
  root.innerHTML = `<section class="card"><form class="row" id="usage-form">
      <label>Window <select name="days">${WINDOWS.map(([v, t]) => `<option value="${v}">${t}</option>`).join("")}</select></label>
      <label>Group by <select name="group">${groups.map(([v, t]) => `<option value="${v}">${t}</option>`).join("")}</select></label>
      <a id="export">Export as CSV</a></form></section><div id="usage-out"></div>`;
  const form = root.querySelector("#usage-form");
  const load = async () => {
    const days = Number(form.days.value), gran = WINDOWS.find((w) => w[0] === form.days.value)[2];
    const start = new Date(Date.now() - days * 86400e3).toISOString().slice(0, 19);
    const q = `start=${start}&group_by=${form.group.value}`;
    root.querySelector("#export").href = `/v2/usage/export?${q}`;
    const [totals, series] = await Promise.all([
      api(`/v2/usage?${q}`, { signal }), api(`/v2/usage?start=${start}&group_by=model&granularity=${gran}`, { signal })]);
    root.querySelector("#usage-out").innerHTML = view(totals, series, form.group.value);
  };
  form.onchange = () => load().catch((err) => { root.querySelector("#usage-out").innerHTML = empty(err.message); });
  await load();
}

function view(totals, series, group) {
  const s = totals.summary;
  if (!s.api_requests) return `<section class="card">${empty("No requests metered in this window yet. Calls to /v1 endpoints show up here within a minute.")}</section>`;
  const name = (i) => (group === "user" ? i.user_name : group === "api_key" ? i.api_key_name || "(no key)" : i.model) ?? "";
  const buckets = [...new Set(series.items.map((i) => i.bucket))].sort();
  const models = [...new Set(series.items.map((i) => i.model))];
  const lines = models.map((m) => ({ name: m, values: buckets.map((b) => series.items.find((i) => i.bucket === b && i.model === m)?.total_tokens || 0) }));
  const max = Math.max(1, ...lines.flatMap((l) => l.values));
  return `<div class="grid">${[["Requests", s.api_requests], ["Input tokens", s.input_tokens], ["Output tokens", s.output_tokens], ["Models", s.models_called]]
      .map(([t, v]) => `<section class="card"><div class="msg">${t}</div><div class="stat">${v.toLocaleString()}</div></section>`).join("")}</div>
    <section class="card"><h3>Tokens over time, per model</h3>${lineChart(lines, { max, unit: "", labels: buckets.map((b) => b.slice(5, 16)), emptyText: "All requests of this window fall in one period; the chart needs two." })}</section>
    <section class="card"><h3>Tokens per ${esc(group.replace("_", " "))}</h3>${barChart(totals.items.map((i) => ({ name: name(i), value: i.total_tokens })))}
    ${table(["Name", "Requests", "Errors", "Input tokens", "Output tokens", "Avg latency"], totals.items.map((i) => `<tr><td>${esc(name(i))}</td>
      <td>${i.api_requests}</td><td>${i.errors}</td><td>${i.input_tokens}</td><td>${i.output_tokens}</td><td>${Math.round(i.avg_latency_ms)} ms</td></tr>`))}</section>`;
}
