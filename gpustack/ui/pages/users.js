// Users (admins): create, change role, reset a password, delete.
import { api, attempt, esc, list, table, when } from "/ui/lib.js";

export async function render(root, { me, signal }) {
  root.innerHTML = `<section class="card"><h3>Add a user</h3><form id="user-form" class="row">
      <label>Username <input name="username" required></label><label>Full name <input name="full_name"></label>
      <label>Password <input name="password" type="password" minlength="6" required autocomplete="new-password"></label>
      <label class="check"><input type="checkbox" name="is_admin"> Admin</label>
      <label class="check"><input type="checkbox" name="require_password_change" checked> Must choose their own password at first sign-in</label>
      <button>Create user</button></form></section>
    <section class="card" id="users"></section>`;
  const form = root.querySelector("#user-form");
  const refresh = async () => { root.querySelector("#users").innerHTML = usersTable(await list("/v2/users", signal), me); };
  form.onsubmit = (e) => {
    e.preventDefault();
    attempt(async () => {
      const body = { username: form.username.value, full_name: form.full_name.value || null, password: form.password.value,
        is_admin: form.is_admin.checked, require_password_change: form.require_password_change.checked };
      await api("/v2/users", { method: "POST", body });
      form.reset();
      await refresh();
    }, form.querySelector("button"));
  };
  root.querySelector("#users").onclick = (e) => onAction(e, refresh);
  await refresh();
}

function usersTable(users, me) {
  return table(["Username", "Full name", "Role", "Created", "Actions"], users.map((u) => `<tr><td>${esc(u.username)}${
    u.require_password_change ? ' <span class="badge pending">must change password</span>' : ""}</td>
    <td>${esc(u.full_name)}</td><td>${u.is_admin ? "admin" : "user"}</td><td>${esc(when(u.created_at))}</td>
    <td>${u.id === me.id ? '<span class="msg">you</span>' : `<button type="button" class="ghost" data-act="role" data-id="${u.id}" data-admin="${u.is_admin}">${u.is_admin ? "Make user" : "Make admin"}</button>
      <button type="button" class="ghost" data-act="reset" data-id="${u.id}" data-name="${esc(u.username)}">Reset password</button>
      <button type="button" class="danger" data-act="delete" data-id="${u.id}" data-name="${esc(u.username)}">Delete</button>`}</td></tr>`));
}

function onAction(e, refresh) {
  const b = e.target.closest("button[data-act]");
  if (!b) return;
  const path = `/v2/users/${b.dataset.id}`;
  attempt(async () => {
    if (b.dataset.act === "role") {
      await api(path, { method: "PUT", body: { is_admin: b.dataset.admin !== "true" } });
    } else if (b.dataset.act === "reset") {
      const password = prompt(`New password for ${b.dataset.name} (at least 6 characters; they choose their own at the next sign-in):`);
      if (!password) return;
      await api(path, { method: "PUT", body: { password, require_password_change: true } });
    } else if (confirm(`Delete the user “${b.dataset.name}” and their API keys?`)) {
      await api(path, { method: "DELETE" });
    }
    await refresh();
  }, b);
}
