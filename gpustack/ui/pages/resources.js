// Resources: workers with their GPUs (utilisation, VRAM, temperature), GPUs across workers, model files.
import { api, attempt, badge, bar, empty, esc, gib, live, pct, table } from "/ui/lib.js";

export async function render(root, { me, signal }) {
  root.innerHTML = `<section class="card"><h3>Workers</h3><div id="workers">${empty("Loading…")}</div></section>
    <section class="card"><h3>GPUs</h3><div id="gpus"></div></section>
    <section class="card"><h3>Model files</h3><div id="files"></div></section>`;
  const state = { workers: [], files: [] };
  const draw = () => {
    root.querySelector("#workers").innerHTML = workersTable(state.workers, me.is_admin);
    root.querySelector("#gpus").innerHTML = gpusTable(state.workers);
    root.querySelector("#files").innerHTML = filesTable(state.files, state.workers);
  };
  live("/v2/workers", signal, (rows) => { state.workers = rows.sort((a, b) => a.id - b.id); draw(); });
  if (me.is_admin) live("/v2/model-files", signal, (rows) => { state.files = rows; draw(); });
  root.addEventListener("click", (e) => onClick(e));
}

function workersTable(workers, admin) {
  return table(["Worker", "State", "CPU", "Memory", "GPUs", "Labels", admin ? "Actions" : ""], workers.map((w) => {
    const s = w.status, mem = s?.memory || {};
    return `<tr><td><b>${esc(w.name)}</b><div class="msg">${esc(w.hostname)} · ${esc(w.ip)}:${esc(w.port)}</div></td>
      <td>${badge(w.state)}${s?.simulated_gpus ? ' <span class="badge sim">simulated</span>' : ""}${
        w.maintenance?.enabled ? ` <span class="badge pending" title="${esc(w.maintenance.message)}">maintenance</span>` : ""}
        <div class="msg">${esc(w.state_message)}${w.maintenance?.enabled && w.maintenance.message ? `\n${esc(w.maintenance.message)}` : ""}</div></td>
      <td>${s ? `${s.cpu.total} cores ${pct(s.cpu.utilization_rate)}${bar((s.cpu.utilization_rate || 0) / 100)}` : ""}</td>
      <td>${s ? `${gib(mem.used)} / ${gib(mem.total)}${bar(mem.used / (mem.total || 1))}` : ""}</td>
      <td style="min-width:460px">${gpuBars(s?.gpu_devices || [])}</td>
      <td class="msg" style="white-space:pre">${esc(Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join("\n"))}</td>
      <td>${admin ? `<button type="button" class="ghost" data-act="maintenance" data-id="${w.id}" data-on="${!!w.maintenance?.enabled}">${
        w.maintenance?.enabled ? "End maintenance" : "Maintenance"}</button>
        <button type="button" class="ghost" data-act="labels" data-id="${w.id}" data-labels="${esc(JSON.stringify(w.labels))}">Edit labels</button>
        <button type="button" class="danger" data-act="delete" data-id="${w.id}" data-name="${esc(w.name)}">Delete</button>` : ""}</td></tr>`;
  }), "No workers have registered yet.");
}

function gpuBars(gpus) {
  if (!gpus.length) return '<span class="msg">CPU only</span>';
  return gpus.map((g) => {
    const total = g.memory_total ?? g.memory?.total ?? 0, used = g.memory_used ?? g.memory?.used ?? 0;
    return `<div class="gpu"><span>${g.index}: ${esc(g.name)}${g.simulated ? ' <span class="badge sim">simulated</span>' : ""}</span>
      <span class="msg">util ${pct(g.core_utilization)}${bar((g.core_utilization || 0) / 100)}</span>
      <span class="msg">VRAM ${gib(used)} / ${gib(total)}${bar(used / (total || 1))}</span>
      <span>${g.temperature != null ? `${Math.round(g.temperature)}°C` : ""}</span></div>`;
  }).join("");
}

function gpusTable(workers) {
  const rows = workers.flatMap((w) => (w.status?.gpu_devices || []).map((g) => {
    const total = g.memory_total ?? g.memory?.total ?? 0, used = g.memory_used ?? g.memory?.used ?? 0;
    return `<tr><td>${esc(w.name)}</td><td>${g.index}</td><td>${esc(g.name)}${g.simulated ? ' <span class="badge sim">simulated</span>' : ""}</td>
      <td>${pct(g.core_utilization)}</td><td>${gib(used)} / ${gib(total)}</td><td>${g.temperature != null ? `${Math.round(g.temperature)}°C` : "—"}</td></tr>`;
  }));
  return table(["Worker", "Index", "Name", "Utilisation", "VRAM", "Temperature"], rows, "No GPUs reported.");
}

function filesTable(files, workers) {
  const name = (id) => workers.find((w) => w.id === id)?.name ?? id;
  return table(["Worker", "Source", "State", "Progress", "Size"], files.map((f) => `<tr><td>${esc(name(f.worker_id))}</td>
    <td class="msg">${esc(f.source_key)}</td><td>${badge(f.state)}<div class="msg">${esc(f.state_message)}</div></td>
    <td>${bar((f.download_progress || 0) / 100, "", false)} ${Math.round(f.download_progress || 0)}%</td><td>${f.size ? gib(f.size) : ""}</td></tr>`), "No model files yet.");
}

function onClick(e) {
  const b = e.target.closest("button[data-act]");
  if (!b) return;
  attempt(async () => {
    if (b.dataset.act === "maintenance") {
      const enable = b.dataset.on !== "true";
      const message = enable ? prompt("Maintenance: this worker takes no new replicas (running ones stay). Note for others:", "") : null;
      if (enable && message === null) return;
      await api(`/v2/workers/${b.dataset.id}`, { method: "PUT", body: { maintenance: { enabled: enable, message: message || null } } });
    } else if (b.dataset.act === "labels") {
      const current = Object.entries(JSON.parse(b.dataset.labels)).map(([k, v]) => `${k}=${v}`).join(", ");
      const text = prompt("Labels as key=value, comma separated:", current);
      if (text === null) return;
      const labels = Object.fromEntries(text.split(",").map((s) => s.trim()).filter(Boolean).map((s) => s.split("=").map((p) => p.trim())));
      await api(`/v2/workers/${b.dataset.id}`, { method: "PUT", body: { labels } });
    } else if (confirm(`Delete the worker “${b.dataset.name}”? Its instances are rescheduled.`)) {
      await api(`/v2/workers/${b.dataset.id}`, { method: "DELETE" });
    }
  }, b);
}
