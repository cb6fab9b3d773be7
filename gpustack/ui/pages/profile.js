// Own profile: name and password.
import { changePassword } from "/ui/app.js";
import { api, attempt, esc } from "/ui/lib.js";

export async function render(root, { me }) {
  root.innerHTML = `<section class="card"><h3>${esc(me.username)}</h3><p class="msg">${me.is_admin ? "Administrator" : "User"}</p>
    <form id="name-form" class="row"><label>Full name <input name="full_name" value="${esc(me.full_name)}"></label><button>Save</button></form></section>
    <section class="card"><h3>Change password</h3><form id="pw-form" class="row">
      <label>Current password <input name="current_password" type="password" required autocomplete="current-password"></label>
      <label>New password <input name="new_password" type="password" minlength="6" required autocomplete="new-password"></label>
      <button>Change password</button><span class="msg" id="pw-done" role="status"></span></form></section>`;
  const nameForm = root.querySelector("#name-form"), pwForm = root.querySelector("#pw-form");
  nameForm.onsubmit = (e) => {
    e.preventDefault();
    attempt(async () => { Object.assign(me, await api("/v2/users/me", { method: "PUT", body: { full_name: nameForm.full_name.value || null } })); }, nameForm.querySelector("button"));
  };
  pwForm.onsubmit = (e) => {
    e.preventDefault();
    attempt(async () => {
      await changePassword(me.username, Object.fromEntries(new FormData(pwForm)));
      pwForm.reset();
      root.querySelector("#pw-done").textContent = "Password changed.";
    }, pwForm.querySelector("button"));
  };
}
