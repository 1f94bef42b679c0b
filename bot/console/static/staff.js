// The supervisors' staff page: accounts, roles, ending sessions, removing accounts.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("status");

  async function call(method, url, body) {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await response.json();
    status.textContent = response.ok ? "" : (data.error || `error ${response.status}`);
    return response.ok ? data : null;
  }

  function button(label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  async function load() {
    const data = await call("GET", "/console/api/staff/members");
    if (!data) return;
    const table = document.getElementById("members");
    table.replaceChildren();
    for (const m of data.members) {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = m.name;
      const role = document.createElement("td");
      role.textContent = m.role;
      const actions = document.createElement("td");
      const other = m.role === "supervisor" ? "staff" : "supervisor";
      const base = `/console/api/staff/members/${encodeURIComponent(m.name)}`;
      actions.append(
        button(`Make ${other}`, async () => { await call("POST", `${base}/role`, { role: other }); load(); }),
        button("End sessions", async () => { await call("POST", `${base}/revoke`, {}); load(); }),
        button("Remove", async () => {
          if (confirm(`Remove ${m.name}?`)) { await call("POST", `${base}/remove`, {}); load(); }
        }));
      tr.append(name, role, actions);
      table.append(tr);
    }
  }

  document.getElementById("add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    if (await call("POST", "/console/api/staff/members", Object.fromEntries(form))) {
      event.target.reset();
      load();
    }
  });
  load();
})();
