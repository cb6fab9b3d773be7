// Overview: counts, cluster GPU/CPU utilisation and memory over time, models by state, recent token usage.
import { api, barChart, empty, esc, gib, lineChart, live } from "/ui/lib.js";

export async function render(root, { signal }) {
  root.innerHTML = `<div class="grid" id="counts"></div>
    <div class="grid2"><section class="card"><h3>Utilisation (last hour)</h3><div id="util">${empty("Loading…")}</div></section>
      <section class="card"><h3>Memory (last hour)</h3><div id="mem"></div></section></div>
    <div class="grid2"><section class="card"><h3>Models by state</h3><div id="states"></div></section>
      <section class="card"><h3>Token usage (last 24 hours)</h3><div id="usage"></div></section></div>`;
  const state = { workers: [], models: [], instances: [] };
  const draw = () => {
    const gpus = state.workers.flatMap((w) => w.status?.gpu_devices || []);
    root.querySelector("#counts").innerHTML = [["Workers", `${state.workers.filter((w) => w.state === "ready").length} / ${state.workers.length} ready`],
      ["GPUs", gpus.length], ["Models", state.models.length],
      ["Instances", `${state.instances.filter((i) => i.state === "running").length} / ${state.instances.length} running`]]
      .map(([t, v]) => `<section class="card"><div class="msg">${t}</div><div class="stat">${esc(v)}</div></section>`).join("");
    const counts = {};
    for (const m of state.models) { const s = m.state ?? (m.replicas ? "pending" : "stopped"); counts[s] = (counts[s] || 0) + 1; }
    root.querySelector("#states").innerHTML = barChart(Object.entries(counts).map(([name, value]) => ({ name, value }))) || empty("No models yet.");
  };
  for (const key of Object.keys(state)) {
    const path = key === "instances" ? "/v2/model-instances" : `/v2/${key}`;
    live(path, signal, (rows) => { state[key] = rows; draw(); });
  }
  const [history, usage] = await Promise.all([api("/v2/gpu-history", { signal }), api("/v2/usage?group_by=model", { signal })]);
  drawHistory(root, history.series);
  root.querySelector("#usage").innerHTML = usage.summary.api_requests
    ? barChart(usage.items.map((i) => ({ name: i.model, value: i.total_tokens })), " tokens")
    : empty("No requests metered yet.");
}

/** Cluster averages per sample: GPU utilisation, host CPU utilisation, VRAM and RAM used. */
function drawHistory(root, series) {
  const gpu = series.filter((s) => s.gpu_index >= 0), host = series.filter((s) => s.gpu_index < 0);
  const avg = (group, field) => column(group, field, (vals) => vals.reduce((a, b) => a + b, 0) / vals.length);
  const sum = (group, field) => column(group, field, (vals) => vals.reduce((a, b) => a + b, 0));
  const labels = (series[0]?.time || []).map((t) => t.slice(11, 16));
  root.querySelector("#util").innerHTML = lineChart([
    ...(gpu.length ? [{ name: "GPU", values: avg(gpu, "utilization") }] : []), { name: "CPU", values: avg(host, "utilization") }], { labels });
  const memMax = Math.max(1, ...sum(host, "memory_total"), ...sum(gpu, "memory_total"));
  root.querySelector("#mem").innerHTML = lineChart([
    ...(gpu.length ? [{ name: `VRAM (of ${gib(sum(gpu, "memory_total").at(-1))})`, values: sum(gpu, "memory_used") }] : []),
    { name: `RAM (of ${gib(sum(host, "memory_total").at(-1))})`, values: sum(host, "memory_used") }], { max: memMax, unit: "B", labels });
}

/** One value per sample index across series (series of one history share its sample clock, newest last). */
function column(group, field, reduce) {
  const n = Math.min(...group.map((s) => s[field].length));
  if (!group.length || !Number.isFinite(n)) return [];
  return Array.from({ length: n }, (_, i) => reduce(group.map((s) => s[field][s[field].length - n + i] || 0)));
}
