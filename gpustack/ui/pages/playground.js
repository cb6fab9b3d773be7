// Playground: streamed chat (optionally two models side by side) with its curl/Python, embeddings, rerank,
// and speech/image tabs where such models run.
import { ApiError, attempt, empty, errorMessage, esc, list, readSSE } from "/ui/lib.js";
import { MEDIA_TABS } from "/ui/playground-media.js";

const serves = (m, category) => !(m.categories || []).length || m.categories.includes(category);
const TEXT_TABS = [
  { tab: "chat", title: "Chat", category: "llm", html: chatHtml, wire: wireChat },
  { tab: "embeddings", title: "Embeddings", category: "embedding", html: embedHtml, wire: wireEmbeddings },
  { tab: "rerank", title: "Rerank", category: "reranker", html: rerankHtml, wire: wireRerank },
];

export async function render(root, { signal }) {
  const models = (await list("/v2/models", signal)).filter((m) => m.ready_replicas > 0);
  // a tab per kind of model that runs: text tabs also take models without categories, media tabs need theirs
  const tabs = [...TEXT_TABS.map((t) => ({ ...t, models: models.filter((m) => serves(m, t.category)) })),
    ...MEDIA_TABS.map((t) => ({ ...t, models: models.filter((m) => (m.categories || []).includes(t.category)) }))]
    .filter((t) => t.models.length);
  if (!tabs.length) { root.innerHTML = `<section class="card">${empty("No model is running yet. Deploy one, then try it here.")}</section>`; return; }
  const options = (t) => t.models.map((m) => `<option>${esc(m.name)}</option>`).join("");
  root.innerHTML = `<div class="tabs">${tabs.map((t, i) => `<button type="button" class="${i ? "" : "on"}" data-tab="${t.tab}">${t.title}</button>`).join("")}</div>
    ${tabs.map((t, i) => `<section class="card" data-pane="${t.tab}" ${i ? "hidden" : ""}>${t.html(options(t))}</section>`).join("")}`;
  for (const t of tabs) t.wire(root.querySelector(`[data-pane="${t.tab}"] form`), signal);
  root.querySelector(".tabs").onclick = (e) => {
    const tab = e.target.dataset.tab;
    if (!tab) return;
    root.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("on", b.dataset.tab === tab));
    root.querySelectorAll("[data-pane]").forEach((p) => { p.hidden = p.dataset.pane !== tab; });
  };
}

function chatHtml(options) {
  return `<form id="chat-form" class="stack" style="max-width:none">
    <div class="row"><label>Model <select name="model">${options}</select></label>
      <label>Compare with <select name="compare"><option value="">—</option>${options}</select></label>
      <label>Temperature <input name="temperature" type="number" step="0.1" min="0" max="2" value="0.7" style="width:80px"></label>
      <label>Max tokens <input name="max_tokens" type="number" min="1" value="256" style="width:90px"></label></div>
    <label>System prompt <input name="system" placeholder="You are a helpful assistant."></label>
    <div class="grid2" id="chats" style="grid-template-columns:1fr"><div class="chat" id="chat-a"></div><div class="chat" id="chat-b" hidden></div></div>
    <div class="row"><input name="prompt" placeholder="Ask something" style="flex:1" required>
      <button type="submit">Send</button><button type="button" class="ghost" id="chat-clear">Clear</button>
      <button type="button" class="ghost" id="chat-code">View code</button></div>
    <pre id="code" hidden></pre></form>`;
}

function wireChat(form, signal) {
  const history = { a: [], b: [] };
  form.compare.onchange = () => {  // side by side only while comparing
    form.querySelector("#chat-b").hidden = !form.compare.value;
    form.querySelector("#chats").style.gridTemplateColumns = form.compare.value ? "1fr 1fr" : "1fr";
  };
  form.querySelector("#chat-clear").onclick = () => { history.a = []; history.b = []; form.querySelector("#chat-a").replaceChildren(); form.querySelector("#chat-b").replaceChildren(); };
  form.querySelector("#chat-code").onclick = () => { const pre = form.querySelector("#code"); pre.hidden = !pre.hidden; pre.textContent = code(request(form, history.a, form.model.value)); };
  form.onsubmit = (e) => {
    e.preventDefault();
    const prompt = form.prompt.value;
    form.prompt.value = "";
    const runs = [["a", form.model.value], ...(form.compare.value ? [["b", form.compare.value]] : [])];
    attempt(() => Promise.all(runs.map(([side, model]) => {
      history[side].push({ role: "user", content: prompt });
      return chat(form.querySelector(`#chat-${side}`), request(form, history[side], model), history[side], signal);
    })), form.querySelector("button[type=submit]"));
  };
}

function request(form, history, model) {
  const system = form.system.value.trim();
  return {
    model, stream: true, temperature: Number(form.temperature.value), max_tokens: Number(form.max_tokens.value),
    messages: [...(system ? [{ role: "system", content: system }] : []), ...history],
  };
}

async function chat(box, body, history, signal) {
  const user = document.createElement("div");
  user.className = "m user";
  user.textContent = history[history.length - 1].content;
  const answer = document.createElement("div");
  answer.className = "m assistant";
  answer.innerHTML = `<div class="msg">${esc(body.model)}</div><span></span>`;
  box.append(user, answer);
  const out = answer.querySelector("span");
  const res = await post("/v1/chat/completions", body, signal);
  let text = "", chunks = 0;
  await readSSE(res, (chunk) => {
    answer.dataset.chunks = String(++chunks);
    text += chunk.choices?.[0]?.delta?.content ?? "";
    out.textContent = text;
    box.scrollTop = box.scrollHeight;
  });
  answer.dataset.done = "true";
  history.push({ role: "assistant", content: text });
}

async function post(path, body, signal) {
  const res = await fetch(path, { method: "POST", credentials: "same-origin", signal,
    headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new ApiError(res.status, `${path}: ${await errorMessage(res)}`);
  return res;
}

function code(body) {
  const json = JSON.stringify(body, null, 2);
  const py = `from openai import OpenAI\n\nclient = OpenAI(base_url="${location.origin}/v1", api_key="YOUR_API_KEY")\n` +
    `stream = client.chat.completions.create(**${json.replace(/true/g, "True").replace(/false/g, "False")})\n` +
    `for chunk in stream:\n    print(chunk.choices[0].delta.content or "", end="")\n`;
  return `# curl\ncurl ${location.origin}/v1/chat/completions \\\n  -H "Authorization: Bearer $GPUSTACK_API_KEY" \\\n` +
    `  -H "Content-Type: application/json" \\\n  -d '${json.replace(/'/g, "'\\''")}'\n\n# Python\n${py}`;
}

function embedHtml(options) {
  return `<form id="embed-form" class="stack"><label>Model <select name="model">${options}</select></label>
    <label>Texts (one per line) <textarea name="texts">The cat sits on the mat.\nA kitten rests on a rug.\nStock prices fell today.</textarea></label>
    <div class="row"><button type="submit">Compare</button></div><div id="embed-out"></div></form>`;
}

function wireEmbeddings(form, signal) {
  form.onsubmit = (e) => {
    e.preventDefault();
    attempt(async () => {
      const texts = form.texts.value.split("\n").map((s) => s.trim()).filter(Boolean);
      const res = await post("/v1/embeddings", { model: form.model.value, input: texts }, signal);
      const vectors = (await res.json()).data.map((d) => d.embedding);
      const rows = texts.map((t, i) => `<tr><td>${esc(t)}</td>${vectors.map((v) => `<td>${cosine(vectors[i], v).toFixed(3)}</td>`).join("")}</tr>`);
      form.querySelector("#embed-out").innerHTML = `<table><tr><th>Cosine similarity</th>${texts.map((_, i) => `<th>#${i + 1}</th>`).join("")}</tr>${rows.join("")}</table>`;
    }, form.querySelector("button"));
  };
}

const cosine = (a, b) => {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / (Math.sqrt(na * nb) || 1);
};

function rerankHtml(options) {
  return `<form id="rerank-form" class="stack"><label>Model <select name="model">${options}</select></label>
    <label>Query <input name="query" value="What do cats like?"></label>
    <label>Documents (one per line) <textarea name="documents">Cats enjoy sleeping in the sun.\nThe stock market closed higher.</textarea></label>
    <div class="row"><button type="submit">Rerank</button></div><div id="rerank-out"></div></form>`;
}

function wireRerank(form, signal) {
  form.onsubmit = (e) => {
    e.preventDefault();
    attempt(async () => {
      const documents = form.documents.value.split("\n").map((s) => s.trim()).filter(Boolean);
      const res = await post("/v1/rerank", { model: form.model.value, query: form.query.value, documents }, signal);
      const rows = (await res.json()).results.map((r) => `<tr><td>${r.relevance_score.toFixed(3)}</td><td>${esc(documents[r.index])}</td></tr>`);
      form.querySelector("#rerank-out").innerHTML = `<table><tr><th>Score</th><th>Document</th></tr>${rows.join("")}</table>`;
    }, form.querySelector("button"));
  };
}
