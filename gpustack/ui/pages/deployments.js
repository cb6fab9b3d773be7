// Deployments: models and their instances, live from the watch streams; scale, stop/start, edit, delete, logs.
import { api, attempt, badge, esc, empty, live, showError } from "/ui/lib.js";

export async function render(root, { me, signal }) {
  root.innerHTML = `<section class="card" id="models">${empty("Loading…")}</section>
    <section class="card" id="log-viewer" hidden></section>`;
  const state = { models: [], instances: [] };
  const draw = () => {
    const typing = document.activeElement?.dataset?.replicas;  // keep a value being typed across redraws
    const value = typing && document.activeElement.value;
    root.querySelector("#models").innerHTML = modelsTable(state, me.is_admin);
    const input = typing && root.querySelector(`[data-replicas="${typing}"]`);
    if (input) { input.value = value; input.focus(); }
  };
  live("/v2/models", signal, (rows) => { state.models = rows; draw(); });
  live("/v2/model-instances", signal, (rows) => { state.instances = rows; draw(); });
  root.addEventListener("click", (e) => onClick(e, root, signal));
}

function modelsTable({ models, instances }, admin) {
  if (!models.length) return empty(admin ? "No models yet. Deploy one from “Deploy a model”." : "No models deployed yet.");
  const head = ["Model", "State", "Replicas", "Backend", "Source", admin ? "Actions" : ""];
  const rows = models.sort((a, b) => a.id - b.id).map((m) => {
    const own = instances.filter((i) => i.model_id === m.id).sort((a, b) => a.id - b.id);
    const state = m.state ?? (m.replicas === 0 ? "stopped" : "");
    return `<tr data-model="${m.id}"><td><b>${esc(m.name)}</b></td><td>${badge(state)}</td>
      <td>${m.ready_replicas} / ${m.replicas}</td><td>${esc(m.backend)}</td>
      <td class="msg">${esc(m.local_path || m.huggingface_repo_id || m.model_scope_model_id)}</td>
      <td>${admin ? modelActions(m) : ""}</td></tr>
      <tr class="sub"><td colspan="6">${instanceTable(own, admin)}</td></tr>`;
  });
  return `<table><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>${rows.join("")}</table>`;
}

function modelActions(m) {
  return `<div class="row"><label>Replicas <input type="number" min="0" max="64" value="${m.replicas}"
      data-replicas="${m.id}" style="width:64px"></label>
    <button type="button" data-act="scale" data-id="${m.id}">Scale</button>
    <button type="button" class="ghost" data-act="${m.replicas ? "stop" : "start"}" data-id="${m.id}">${m.replicas ? "Stop" : "Start"}</button>
    <a class="ghost" href="#/deploy?edit=${m.id}">Edit</a>
    <button type="button" class="danger" data-act="delete" data-id="${m.id}" data-name="${esc(m.name)}">Delete</button></div>`;
}

function instanceTable(instances, admin) {
  if (!instances.length) return `<span class="msg">No instances.</span>`;
  const rows = instances.map((i) => `<tr data-instance="${i.id}"><td>${esc(i.name)}</td>
    <td>${badge(i.state)}${i.download_progress != null && i.state === "downloading" ? ` ${Math.round(i.download_progress)}%` : ""}
      <div class="msg">${esc(i.state_message)}</div></td>
    <td>${esc(i.worker_name ?? "—")}</td><td>${esc(i.gpu_indexes.join(", ") || "CPU")}</td>
    <td>${esc(i.port ?? "")}</td><td>${esc(i.restart_count)}</td>
    <td>${admin ? `<button type="button" class="ghost" data-act="logs" data-id="${i.id}" data-name="${esc(i.name)}">Logs</button>` : ""}</td></tr>`);
  return `<table><tr><th>Instance</th><th>State</th><th>Worker</th><th>GPUs</th><th>Port</th><th>Restarts</th><th></th></tr>${rows.join("")}</table>`;
}

async function onClick(e, root, signal) {
  const button = e.target.closest("button[data-act]");
  if (!button) return;
  const id = Number(button.dataset.id);
  const act = button.dataset.act;
  if (act === "logs") return openLogs(root.querySelector("#log-viewer"), id, button.dataset.name, signal);
  await attempt(async () => {
    if (act === "scale") {
      const replicas = Number(root.querySelector(`[data-replicas="${id}"]`).value);
      await api(`/v2/models/${id}`, { method: "PATCH", body: { replicas } });
    } else if (act === "stop" || act === "start") {
      await api(`/v2/models/${id}`, { method: "PATCH", body: { replicas: act === "stop" ? 0 : 1 } });
    } else if (act === "delete" && confirm(`Delete model “${button.dataset.name}” and all its instances?`)) {
      await api(`/v2/models/${id}`, { method: "DELETE" });
    }
  }, button);
}

let logController = null;

/** Tail + follow an instance's log into the viewer; Download fetches a longer tail as a file. */
function openLogs(box, id, name, pageSignal) {
  logController?.abort();
  const controller = new AbortController();
  logController = controller;
  pageSignal.addEventListener("abort", () => controller.abort(), { once: true });
  box.hidden = false;
  box.innerHTML = `<div class="row"><h3>Logs of ${esc(name)}</h3>
    <label class="check"><input type="checkbox" id="log-follow" checked> Follow</label>
    <a href="/v2/model-instances/${id}/logs?tail=100000" download="${esc(name)}.log">Download</a>
    <button type="button" class="ghost" id="log-close">Close</button></div><pre class="logs" id="log-text"></pre>`;
  const pre = box.querySelector("#log-text");
  box.querySelector("#log-close").onclick = () => { controller.abort(); box.hidden = true; box.replaceChildren(); };
  const follow = box.querySelector("#log-follow");
  follow.onchange = () => { if (follow.checked) pre.scrollTop = pre.scrollHeight; };
  (async () => {
    try {
      const res = await api(`/v2/model-instances/${id}/logs?tail=200&follow=true`, { signal: controller.signal, raw: true });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pre.append(value);
        if (follow.checked) pre.scrollTop = pre.scrollHeight;
      }
    } catch (err) {
      if (!controller.signal.aborted) showError(`Logs of ${name}: ${err.message}`);
    }
  })();
}
