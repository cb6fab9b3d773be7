// Deploy form: source, backend (pre-selected by the server, changeable), placement, and a live fit check.
import { api, attempt, esc, gib, list } from "/ui/lib.js";

const HINTS = {
  "llama-box": "llama.cpp flags, e.g. --ctx-size=4096, --n-gpu-layers=99, --parallel=4",
  vllm: "vLLM flags, e.g. --max-model-len=8192, --gpu-memory-utilization=0.9, --tensor-parallel-size=2",
  sglang: "SGLang flags, e.g. --context-length=8192, --mem-fraction-static=0.85",
  mindie: "MindIE flags, e.g. --max-seq-len=8192, --npu-memory-fraction=0.9",
  "vox-box": "vox-box flags (speech models)",
  custom: "the flags your image's run command takes",
};

export async function render(root, { params, signal }) {
  const editId = params.get("edit");
  const [backends, workers, model] = await Promise.all([
    api("/v2/inference-backends/list", { signal }).then((r) => r.items).catch(() => []),
    list("/v2/workers", signal),
    editId ? api(`/v2/models/${editId}`, { signal }) : null,
  ]);
  root.innerHTML = formHtml(backends, workers, model);
  const form = root.querySelector("form");
  if (model) fill(form, model);
  const sync = () => {
    const entry = backends.find((b) => b.backend_name === form.backend.value);  // the catalog's versions
    form.querySelector("#backend-versions").innerHTML = (entry?.versions || []).filter((v) => !v.is_deprecated)
      .map((v) => `<option value="${esc(v.version)}">`).join("");
    form.backend_version.placeholder = entry?.default_version ? `default: ${entry.default_version}` : "default";
    for (const el of form.querySelectorAll("[data-source]")) el.hidden = el.dataset.source !== form.source.value;
    for (const el of form.querySelectorAll("[data-backend]")) el.hidden = el.dataset.backend !== form.backend.value;
    form.querySelector("#backend-hint").textContent = HINTS[form.backend.value] || "Pre-selected from the model's files when left on automatic.";
  };
  let timer = null;
  const changed = () => { sync(); clearTimeout(timer); timer = setTimeout(() => check(form, signal), 500); };
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  sync();
  wireHubSearch(form, signal);
  form.onsubmit = (e) => {
    e.preventDefault();
    attempt(async () => {
      const body = spec(form);  // a PUT replaces the spec: what the form does not show is carried over
      if (model) await api(`/v2/models/${model.id}`, { method: "PUT", body: { description: model.description, ...body } });
      else await api("/v2/models", { method: "POST", body });
      location.hash = "#/deployments";
    }, form.querySelector("button[type=submit]"));
  };
  if (model) check(form, signal);
}

function formHtml(backends, workers, model) {
  const gpus = workers.flatMap((w) => (w.status?.gpu_devices || []).map((g) =>
    `<label class="check"><input type="checkbox" name="gpu" value="${esc(w.name)}:${esc(g.vendor === "nvidia" ? "cuda" : g.vendor)}:${g.index}">
      ${esc(w.name)} GPU ${g.index} · ${esc(g.name)} · ${gib(g.memory_total ?? g.memory?.total)}</label>`));
  const options = backends.map((b) => `<option value="${esc(b.backend_name)}">${esc(b.backend_name)}</option>`).join("");
  return `<section class="card"><form class="stack" id="deploy-form">
    <label>Name <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._:\\/\\-]*" ${model ? "readonly" : ""}></label>
    <label>Source <select name="source"><option value="local_path">Local path</option>
      <option value="huggingface">Hugging Face</option><option value="model_scope">ModelScope</option></select></label>
    <label data-source="local_path">Local path (on the workers) <input name="local_path" placeholder="/models/qwen2.5-0.5b-q4_k_m.gguf"></label>
    <div class="row" data-source="huggingface"><label>Repository (search the hub) <input name="huggingface_repo_id" list="hub-repos"
        autocomplete="off" placeholder="Qwen/Qwen2.5-0.5B-Instruct-GGUF"></label>
      <label>File (GGUF; empty for the whole repo) <input name="huggingface_filename" list="hub-files" autocomplete="off"></label>
      <datalist id="hub-repos"></datalist><datalist id="hub-files"></datalist><span class="msg" id="hub-note"></span></div>
    <div class="row" data-source="model_scope"><label>Model id <input name="model_scope_model_id"></label>
      <label>File path <input name="model_scope_file_path"></label></div>
    <div class="row"><label>Backend <select name="backend"><option value="">automatic</option>${options}</select></label>
      <label>Backend version <input name="backend_version" placeholder="default" list="backend-versions" autocomplete="off"></label>
      <datalist id="backend-versions"></datalist>
      <label>Replicas <input name="replicas" type="number" min="0" max="64" value="1"></label>
      <label>Placement <select name="placement_strategy"><option>spread</option><option>binpack</option></select></label></div>
    <label>Backend parameters (one per line) <textarea name="backend_parameters"></textarea>
      <span class="msg" id="backend-hint"></span></label>
    <div class="row"><label data-backend="custom">Run command ({{model_path}} {{port}} {{host}} {{model_name}})
        <input name="run_command" size="60"></label><label>Container image (docker runtime; empty: the catalog's)
        <input name="image_name" size="40"></label></div>
    <label>Worker label selector (key=value, one per line) <textarea name="worker_selector"></textarea></label>
    <label>Environment (KEY=value, one per line) <textarea name="env"></textarea></label>
    <div class="row"><span class="msg">Categories (none: every endpoint):</span>${CATEGORIES.map((c) =>
      `<label class="check"><input type="checkbox" name="category" value="${c}"> ${c}</label>`).join("")}</div>
    <fieldset><legend class="msg">GPUs (leave empty to let the scheduler choose)</legend>${gpus.join("") || '<span class="msg">No GPUs reported.</span>'}</fieldset>
    <div class="row"><label class="check"><input type="checkbox" name="cpu_offloading" checked> Allow CPU offload</label>
      <label class="check"><input type="checkbox" name="distributed_inference_across_workers"> Distribute across workers</label></div>
    <div id="fit" class="fit msg">Fill in the source to check whether the model fits.</div>
    <div class="row"><button type="submit">${model ? "Save" : "Deploy"}</button></div>
  </form></section>`;
}

const CATEGORIES = ["llm", "embedding", "reranker", "image", "speech_to_text", "text_to_speech"];
const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);

function spec(form) {
  const f = form.elements;
  const pairs = (text) => Object.fromEntries(lines(text).map((l) => [l.split("=")[0].trim(), l.split("=").slice(1).join("=").trim()]));
  const selector = pairs(f.worker_selector.value);
  const out = {
    name: f.name.value.trim(), source: f.source.value, replicas: Number(f.replicas.value),
    backend_version: f.backend_version.value.trim() || null, backend_parameters: lines(f.backend_parameters.value),
    placement_strategy: f.placement_strategy.value, worker_selector: selector,
    gpu_selector: [...form.querySelectorAll("input[name=gpu]:checked")].map((c) => c.value),
    cpu_offloading: f.cpu_offloading.checked, distributed_inference_across_workers: f.distributed_inference_across_workers.checked,
  };
  out.env = pairs(f.env.value);
  out.categories = [...form.querySelectorAll("input[name=category]:checked")].map((c) => c.value);
  if (f.backend.value) out.backend = f.backend.value;
  out.image_name = f.image_name.value.trim() || null;
  if (f.backend.value === "custom") out.run_command = f.run_command.value.trim() || null;
  for (const key of ["local_path", "huggingface_repo_id", "huggingface_filename", "model_scope_model_id", "model_scope_file_path"]) {
    if (f[key].closest("[data-source]").dataset.source === out.source && f[key].value.trim()) out[key] = f[key].value.trim();
  }
  return out;
}

function fill(form, m) {
  const f = form.elements;
  for (const key of ["name", "source", "local_path", "huggingface_repo_id", "huggingface_filename", "model_scope_model_id",
    "model_scope_file_path", "backend", "backend_version", "replicas", "placement_strategy", "run_command", "image_name"]) f[key].value = m[key] ?? "";
  f.env.value = Object.entries(m.env || {}).map(([k, v]) => `${k}=${v}`).join("\n");
  for (const c of form.querySelectorAll("input[name=category]")) c.checked = (m.categories || []).includes(c.value);
  f.backend_parameters.value = (m.backend_parameters || []).join("\n");
  f.worker_selector.value = Object.entries(m.worker_selector || {}).map(([k, v]) => `${k}=${v}`).join("\n");
  f.cpu_offloading.checked = m.cpu_offloading;
  f.distributed_inference_across_workers.checked = m.distributed_inference_across_workers;
  const ids = m.gpu_selector?.gpu_ids || [];
  for (const c of form.querySelectorAll("input[name=gpu]")) c.checked = ids.includes(c.value);
}

/** Asks the dry-run evaluation whether the spec fits, and where; shows its reasons when it does not. */
async function check(form, signal) {
  const box = form.querySelector("#fit");
  const body = spec(form);
  delete body.name;
  if (!body.local_path && !body.huggingface_repo_id && !body.model_scope_model_id) return;
  box.className = "fit msg";
  box.textContent = "Checking…";
  try {
    const { results } = await api("/v2/model-evaluations", { method: "POST", body: { model_specs: [body] }, signal });
    const r = results[0];
    if (r.compatible && r.placement) {
      const p = r.placement, gpus = p.gpu_indexes.length ? ` GPUs ${p.gpu_indexes.join(",")}` : " (CPU)";
      const size = r.resource_claim.vram ? gib(r.resource_claim.vram) : `${gib(r.resource_claim.ram)} RAM`;
      const backend = r.default_spec?.backend ? ` with ${r.default_spec.backend}` : "";
      box.className = "fit ok";
      box.textContent = [`Fits on ${p.worker_name}${gpus} — ${size}${backend}`, ...r.compatibility_messages].join("\n");
      if (!form.backend.value && r.default_spec?.backend) form.querySelector("#backend-hint").textContent = `Automatic: ${r.default_spec.backend}. ${HINTS[r.default_spec.backend] || ""}`;
    } else {
      box.className = "fit no";
      box.textContent = ["Does not fit:", r.error_message, ...r.compatibility_messages, ...r.scheduling_messages].filter(Boolean).join("\n");
    }
  } catch (err) {
    if (err.name === "AbortError") return;
    box.className = "fit no";
    box.textContent = `The check failed: ${err.message}`;
  }
}

const HUB = "https://huggingface.co/api/models";

/** Repository and file suggestions from the Hugging Face hub, where this browser reaches it. */
function wireHubSearch(form, signal) {
  let timer = null;
  form.huggingface_repo_id.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => hubSearch(form, signal), 400); });
  form.huggingface_repo_id.addEventListener("change", () => hubFiles(form, signal));
}

async function hub(form, path, signal) {
  const note = form.querySelector("#hub-note");
  try {
    const res = await fetch(`${HUB}${path}`, { signal });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return await res.json();
  } catch (err) {
    if (err.name !== "AbortError") note.textContent = "The Hugging Face hub does not answer this browser: type the repository id (the workers download it).";
    return null;
  }
}

async function hubSearch(form, signal) {
  const query = form.huggingface_repo_id.value.trim();
  if (query.length < 2) return;
  const found = await hub(form, `?search=${encodeURIComponent(query)}&limit=20&sort=downloads`, signal);
  if (!found) return;
  form.querySelector("#hub-repos").innerHTML = found.map((m) => `<option value="${esc(m.id)}">`).join("");
  form.querySelector("#hub-note").textContent = `${found.length} matching repositories on the hub.`;
}

async function hubFiles(form, signal) {
  const repo = form.huggingface_repo_id.value.trim();
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) return;
  const info = await hub(form, `/${repo}`, signal);
  if (!info) return;
  const files = (info.siblings || []).map((f) => f.rfilename).filter((f) => f.endsWith(".gguf"));
  form.querySelector("#hub-files").innerHTML = files.map((f) => `<option value="${esc(f)}">`).join("");
  form.querySelector("#hub-note").textContent = files.length ? `${files.length} GGUF files in ${repo}.` : `${repo} has no GGUF file: leave the file empty to deploy the whole repository.`;
}
