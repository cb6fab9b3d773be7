// The dashboard shell: session (sign in, forced password change, sign out), navigation and hash routes.
import { api, attempt, clearErrors, esc, onUnauthorized, showError } from "/ui/lib.js";

const ROUTES = {
  overview: { title: "Overview" },
  resources: { title: "Resources" },
  deployments: { title: "Deployments" },
  deploy: { title: "Deploy a model", admin: true },
  playground: { title: "Playground" },
  keys: { title: "API keys" },
  users: { title: "Users", admin: true },
  usage: { title: "Usage" },
  profile: { title: "Profile" },
};

const session = { me: null, page: null };  // everything the signed-in user's pages hold hangs off `page`
const shell = () => document.getElementById("shell");

function parseHash() {
  const [name, query] = location.hash.replace(/^#\/?/, "").split("?");
  return { name: ROUTES[name] ? name : "overview", params: new URLSearchParams(query || "") };
}

async function route() {
  if (!session.me || session.me.require_password_change) return;
  session.page?.abort();  // closes the previous page's streams and drops its state
  const controller = new AbortController();
  session.page = controller;
  const { name, params } = parseHash();
  const spec = ROUTES[name];
  document.querySelectorAll("nav a[data-route]").forEach((a) => a.classList.toggle("active", a.dataset.route === name));
  const main = document.querySelector("main");
  main.innerHTML = `<h2>${esc(spec.title)}</h2><div id="page"></div>`;
  document.title = `${spec.title} · GPUStack`;
  const root = main.querySelector("#page");
  if (spec.admin && !session.me.is_admin) {
    root.innerHTML = `<section class="card">This page is for administrators. Ask an admin if you need it.</section>`;
    return;
  }
  try {
    const page = await import(`/ui/pages/${name}.js`);
    if (!controller.signal.aborted) await page.render(root, { me: session.me, params, signal: controller.signal });
  } catch (err) {
    if (err.name !== "AbortError" && !controller.signal.aborted) showError(err.message);
  }
}

function renderApp() {
  const me = session.me;
  shell().className = "";
  const links = Object.entries(ROUTES).filter(([, r]) => !r.admin || me.is_admin)
    .map(([name, r]) => `<a href="#/${name}" data-route="${name}">${esc(r.title)}</a>`).join("");
  shell().innerHTML = `<nav><h1>GPUStack</h1>${links}
    <div class="who">Signed in as <b id="who">${esc(me.username)}</b>${me.is_admin ? " (admin)" : ""}
      <button type="button" id="sign-out">Sign out</button></div></nav><main></main>`;
  document.getElementById("sign-out").onclick = signOut;
  route();
}

function renderLogin(notice = "") {
  shell().className = "bare";
  shell().innerHTML = `<section class="card auth"><h3>Sign in to GPUStack</h3>
    <form id="login-form" class="stack">
      <label>Username <input name="username" autocomplete="username" required></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
      <p class="msg" id="login-error" role="alert">${esc(notice)}</p>
      <button>Sign in</button>
    </form>
    <p class="msg">The first admin password is in <code>&lt;data-dir&gt;/initial_admin_password</code>.</p></section>`;
  const form = document.getElementById("login-form");
  form.onsubmit = async (e) => {
    e.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      start(await api("/auth/login", { method: "POST", form: new FormData(form) }));
    } catch (err) {
      document.getElementById("login-error").textContent = err.message;  // the server's own words
    } finally { button.disabled = false; }
  };
}

function renderPasswordChange() {
  shell().className = "bare";
  shell().innerHTML = `<section class="card auth"><h3>Choose a new password</h3>
    <p class="msg">This account still uses its generated password. Set your own to continue.</p>
    <form id="password-form" class="stack">
      <label>Current password <input name="current_password" type="password" autocomplete="current-password" required></label>
      <label>New password <input name="new_password" type="password" minlength="6" autocomplete="new-password" required></label>
      <button>Change password</button>
    </form>
    <button type="button" class="ghost" id="sign-out">Sign out</button></section>`;
  const form = document.getElementById("password-form");
  document.getElementById("sign-out").onclick = signOut;
  form.onsubmit = (e) => {
    e.preventDefault();
    attempt(async () => {
      start(await changePassword(session.me.username, Object.fromEntries(new FormData(form))));
    }, form.querySelector("button"));
  };
}

/** A password change ends every session of the user (this one too): sign in again with the new password. */
export async function changePassword(username, body) {
  await api("/v2/users/me/password", { method: "POST", body });
  return api("/auth/login", { method: "POST", form: { username, password: body.new_password } });
}

function start(me) {
  session.me = me;
  if (me.require_password_change) renderPasswordChange(); else renderApp();
}

/** Drops everything the previous user's pages held, then loads a fresh page (nothing survives in memory). */
function wipe() {
  session.page?.abort();
  session.page = null;
  session.me = null;
  clearErrors();
  shell().replaceChildren();
  history.replaceState(null, "", "/");
  location.reload();
}

async function signOut() {
  try { await api("/auth/logout", { method: "POST" }); } catch (err) { showError(err.message); return; }
  wipe();
}

onUnauthorized((message) => {
  session.page?.abort();
  session.me = null;
  clearErrors();
  renderLogin(`Your session ended (${message}). Sign in again.`);
});

window.addEventListener("hashchange", route);
fetch("/v2/users/me", { credentials: "same-origin" }).then(async (res) => {
  if (res.ok) start(await res.json()); else renderLogin();
}).catch((err) => { renderLogin(); showError(`The server did not answer: ${err.message}`); });
