// Beacon staff console: the queue, live over server-sent events, and one conversation.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const me = document.getElementById("me").dataset.staff;
const HEARTBEAT_MS = 30000;
let current = null;     // id of the open conversation
let offset = 0;         // first waiting conversation shown (the queue is paged)
const PAGE = 100;
let heartbeat = null;

function api(path, options = {}) {
  const headers = { "X-CSRF-Token": csrf, ...(options.body ? { "Content-Type": "application/json" } : {}) };
  return fetch("/console/api/" + path, { credentials: "same-origin", ...options, headers })
    .then(async (r) => {
      const body = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(body.error || r.statusText);
      return body;
    });
}

function say(text) { document.getElementById("status").textContent = text || ""; }

function waited(seconds) {
  if (seconds == null) return "";
  if (seconds < 60) return seconds + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min";
  return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
}

function card(c) {
  const li = document.createElement("li");
  const urgent = c.priority === 0;
  li.className = "card" + (urgent ? " urgent" : "");
  li.dataset.id = c.id;
  li.dataset.outcome = c.outcome || "";
  const meta = document.createElement("div");
  meta.className = "meta";
  const outcome = document.createElement("span");
  outcome.className = "outcome";
  outcome.textContent = c.outcome || "?";
  meta.append(outcome, " ", c.channel || "", " · " + (c.language || "en"), " · waiting " + waited(c.waiting_seconds));
  if (c.claimed_by) meta.append(" · held by " + c.claimed_by);
  if (c.urgent_flag) { const f = document.createElement("span"); f.className = "flag"; f.textContent = "URGENT MESSAGE"; meta.append(f); }
  if (c.escalated) { const f = document.createElement("span"); f.className = "flag"; f.textContent = c.escalation_error ? "escalation FAILED: " + c.escalation_error : "escalated"; meta.append(f); }
  const preview = document.createElement("div");
  preview.className = "preview";
  preview.textContent = c.preview || "";
  li.append(meta, preview);
  li.addEventListener("click", () => open(c.id));
  return li;
}

async function refreshQueue() {
  const q = await api("queue?offset=" + offset + "&limit=" + PAGE);
  const waiting = document.getElementById("waiting");
  const held = document.getElementById("held");
  waiting.replaceChildren(...q.waiting.map(card));
  held.replaceChildren(...q.held.map(card));
  document.getElementById("waiting-count").textContent = q.waiting_total;
  document.getElementById("pager").hidden = q.waiting_total <= PAGE;
  document.getElementById("page-info").textContent =
    (q.offset + 1) + "–" + (q.offset + q.waiting.length) + " of " + q.waiting_total;
  document.getElementById("prev-page").disabled = q.offset === 0;
  document.getElementById("next-page").disabled = q.offset + PAGE >= q.waiting_total;
  const dead = document.getElementById("dead");
  dead.replaceChildren(...q.dead_letters.map((d) => {
    const li = document.createElement("li");
    li.className = "card urgent";
    li.textContent = new Date(d.ts * 1000).toLocaleString() + " · " + d.channel + " · " + d.reason;
    li.addEventListener("click", () => open(d.conversation));
    return li;
  }));
  document.getElementById("dead-heading").hidden = q.dead_letters.length === 0;
  // A platform that will not take replies now (its rate limit): say so, and until when.
  const limits = document.getElementById("platform-limits");
  limits.hidden = !(q.platform_limits || []).length;
  limits.textContent = (q.platform_limits || []).map((l) =>
    `${l.channel} (account ${l.account}) is not taking replies: ${l.why}; resumes in ${waited(l.resumes_in_s)}.`).join(" ");
  document.getElementById("duty").checked = q.on_duty.includes(me);
}

async function open(id) {
  current = id;
  document.body.classList.add("viewing");
  const pane = document.getElementById("conversation-pane");
  pane.hidden = false;
  const { conversation: c, transcript } = await api("conversations/" + encodeURIComponent(id));
  const head = document.getElementById("conv-head");
  head.replaceChildren();
  const title = document.createElement("h2");
  title.textContent = `${(c.outcome || "").toUpperCase()} · ${c.channel} · ${c.language || "en"} · ${c.status}`;
  showCanned(c.language || "en");
  const info = document.createElement("p");
  info.className = "meta";
  info.textContent = `confidence ${c.confidence ?? "–"} (${c.intent ?? "–"}) · ${c.reason ?? ""}` +
    (c.claimed_by ? ` · held by ${c.claimed_by}` : "") +
    (c.reply_window_seconds != null ? ` · Meta reply window: ${c.reply_window_seconds > 0 ? waited(c.reply_window_seconds) + " left" : "closed, replies use the HUMAN_AGENT tag"}` : "") +
    (c.notice_sent ? " · 911 notice sent by the safety net" : "") +
    (c.delivery_error ? ` · delivery error: ${c.delivery_error}` : "") +
    (c.log_ref ? ` · logs: ${c.log_ref}` : "");
  head.append(title, info);
  const list = document.getElementById("transcript");
  list.replaceChildren(...transcript.map((e) => {
    const li = document.createElement("li");
    li.className = e.role;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = (e.staff || e.role) + " · " + new Date(e.ts * 1000).toLocaleTimeString() +
      (e.deleted_at ? " · deleted by the citizen " + new Date(e.deleted_at * 1000).toLocaleTimeString() : "");
    if (e.deleted_at) li.classList.add("deleted");
    li.append(who, e.text);
    return li;
  }));
  list.scrollTop = list.scrollHeight;
  const mine = c.claimed_by === me;
  document.getElementById("claim").disabled = c.status !== "waiting";
  for (const el of ["transfer", "resolve", "send", "reply"]) document.getElementById(el).disabled = !mine;
  const base = "/console/api/conversations/" + encodeURIComponent(id) + "/export";
  document.getElementById("export-jsonl").href = base + "?format=jsonl";
  document.getElementById("export-csv").href = base + "?format=csv";
}

async function act(path, body) {
  try {
    await api("conversations/" + encodeURIComponent(current) + "/" + path,
      { method: "POST", body: JSON.stringify(body || {}) });
    say("");
  } catch (e) { say(e.message); }
  await refreshQueue();
  if (current) await open(current);
}

document.getElementById("claim").addEventListener("click", () => act("claim"));
document.getElementById("resolve").addEventListener("click", () => act("resolve"));
document.getElementById("transfer").addEventListener("click", () => {
  const to = document.getElementById("transfer-to").value;
  if (to) act("transfer", { to });
});
document.getElementById("back").addEventListener("click", () => {
  document.body.classList.remove("viewing");
  document.getElementById("conversation-pane").hidden = true;
  current = null;
});
// Canned replies in the conversation's language (English when the department has none in it).
function showCanned(language) {
  const options = [...document.querySelectorAll("#canned option[data-lang]")];
  const known = options.some((o) => o.dataset.lang === language);
  for (const o of options) o.hidden = o.dataset.lang !== (known ? language : "en");
}
document.getElementById("canned").addEventListener("change", (e) => {
  if (e.target.value) document.getElementById("reply").value = e.target.value;
  e.target.value = "";
});
document.getElementById("reply-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const box = document.getElementById("reply");
  const text = box.value.trim();
  if (!text) return;
  await act("reply", { text });
  box.value = "";
});

async function setDuty(on) {
  const r = await api("duty", { method: "POST", body: JSON.stringify({ on }) });
  clearInterval(heartbeat);
  if (on) heartbeat = setInterval(() => api("duty", { method: "POST", body: JSON.stringify({ on: true }) }), HEARTBEAT_MS);
  document.getElementById("duty").checked = r.on_duty.includes(me);
}
document.getElementById("duty").addEventListener("change", (e) => setDuty(e.target.checked).catch((err) => say(err.message)));

async function loadStaff() {
  const { staff } = await api("staff");
  document.getElementById("transfer-to").replaceChildren(...staff.filter((s) => s !== me).map((s) => {
    const o = document.createElement("option"); o.value = s; o.textContent = s; return o;
  }));
}

function listen() {
  const events = new EventSource("/console/api/events");
  events.onmessage = async (m) => {
    const event = JSON.parse(m.data);
    if (event.type === "urgent") say("Urgent message in " + event.conversation);
    if (event.type === "hello") return;
    await refreshQueue();
    if (current && event.conversation === current) await open(current);
  };
  events.onerror = () => say("Live updates interrupted; reconnecting…");
  events.onopen = () => say("");
}

refreshQueue().then(() => {
  if (document.getElementById("duty").checked) setDuty(true);
});
loadStaff();
listen();
setInterval(refreshQueue, 30000);  // waiting times tick even when nothing happens

document.getElementById("prev-page").addEventListener("click", () => {
  offset = Math.max(0, offset - PAGE); refreshQueue();
});
document.getElementById("next-page").addEventListener("click", () => {
  offset += PAGE; refreshQueue();
});
