// API keys: create (the secret is shown once, then dropped from the page), allowed models, expiry, delete.
import { api, attempt, esc, list, table, when } from "/ui/lib.js";

const EXPIRY = [["", "Never"], [String(7 * 86400), "7 days"], [String(30 * 86400), "30 days"], [String(365 * 86400), "1 year"]];

export async function render(root, { signal }) {
  const models = await list("/v2/models", signal).catch(() => []);
  root.innerHTML = `<section class="card"><h3>Create a key</h3><form id="key-form" class="row">
      <label>Name <input name="name" required></label>
      <label>Expires <select name="expires_in_seconds">${EXPIRY.map(([v, t]) => `<option value="${v}">${t}</option>`).join("")}</select></label>
      <label>Allowed models (none selected: all) <select name="allowed_model_names" multiple size="3">${
        models.map((m) => `<option>${esc(m.name)}</option>`).join("")}</select></label>
      <button>Create key</button></form><div id="secret-slot"></div></section>
    <section class="card" id="keys"></section>`;
  const form = root.querySelector("#key-form");
  const refresh = async () => { root.querySelector("#keys").innerHTML = keysTable(await list("/v2/api-keys", signal)); };
  form.onsubmit = (e) => {
    e.preventDefault();
    attempt(async () => {
      const body = { name: form.name.value, allowed_model_names: [...form.allowed_model_names.selectedOptions].map((o) => o.value) };
      if (form.expires_in_seconds.value) body.expires_in_seconds = Number(form.expires_in_seconds.value);
      const created = await api("/v2/api-keys", { method: "POST", body, signal });
      form.reset();
      showOnce(root.querySelector("#secret-slot"), created.value, signal);
      await refresh();
    }, form.querySelector("button"));
  };
  root.querySelector("#keys").onclick = (e) => {
    const b = e.target.closest("button[data-delete]");
    if (!b || !confirm(`Delete the key “${b.dataset.name}”? Clients using it stop working.`)) return;
    attempt(async () => { await api(`/v2/api-keys/${b.dataset.delete}`, { method: "DELETE" }); await refresh(); }, b);
  };
  await refresh();
}

function keysTable(keys) {
  return table(["Name", "Access key", "Allowed models", "Expires", "Created", ""], keys.map((k) => `<tr><td>${esc(k.name)}</td>
    <td><code>${esc(k.access_key)}</code></td><td>${esc(k.allowed_model_names.join(", ") || "all")}</td>
    <td>${esc(k.expires_at ? when(k.expires_at) : "never")}</td><td>${esc(when(k.created_at))}</td>
    <td><button type="button" class="danger" data-delete="${k.id}" data-name="${esc(k.name)}">Delete</button></td></tr>`), "No API keys yet.");
}

/** The secret lives only in this box: Done, leaving the page or signing out removes it for good. */
function showOnce(slot, secret, signal) {
  slot.innerHTML = `<div class="secret" id="new-key"><p>Copy this key now. It is not shown again.</p>
    <code></code> <button type="button" class="ghost" data-copy>Copy</button>
    <button type="button" data-done>Done</button></div>`;
  slot.querySelector("code").textContent = secret;
  const drop = () => slot.replaceChildren();
  slot.querySelector("[data-copy]").onclick = () => attempt(async () => {
    if (navigator.clipboard) return navigator.clipboard.writeText(secret);  // only on https or localhost
    getSelection().selectAllChildren(slot.querySelector("code"));  // else selected, for Ctrl+C
    throw new Error("This browser allows copying only over https or from localhost: the key is selected, press Ctrl+C.");
  });
  slot.querySelector("[data-done]").onclick = () => { secret = ""; drop(); };
  signal.addEventListener("abort", () => { secret = ""; drop(); }, { once: true });
}
