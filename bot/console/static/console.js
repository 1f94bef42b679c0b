// Beacon staff console: the queue, live over server-sent events, and one conversation.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const me = document.getElementById("me").dataset.staff;
const HEARTBEAT_MS = 30000;
let current = null;     // id of the open conversation
let offset = 0;         // first conversation shown (the list is paged)
// A page is a screenful or two, not a 9,000-pixel column: the filters find the rest.
const PAGE = 25;
let heartbeat = null;
let view = "waiting";   // "waiting" (the queue) or "mine" (what this officer holds)
let total = 0;          // conversations matching the filters
const selected = new Set();  // ids ticked for bulk resolve
let listRequest = 0;    // answers to an older filter are dropped

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
  if (c.hit) { const h = document.createElement("div"); h.className = "hit"; h.textContent = c.hit; li.append(h); }
  li.addEventListener("click", () => open(c.id));
  return li;
}

// A card of the filtered list: in the waiting view it can be ticked for bulk resolve.
function listCard(c) {
  const li = card(c);
  if (view !== "waiting") return li;
  const tick = document.createElement("input");
  tick.type = "checkbox";
  tick.className = "pick";
  tick.setAttribute("aria-label", "Select " + c.id);
  tick.checked = selected.has(c.id);
  tick.addEventListener("click", (e) => e.stopPropagation());
  tick.addEventListener("change", () => { tick.checked ? selected.add(c.id) : selected.delete(c.id); showBulk(); });
  li.prepend(tick);
  return li;
}

function filterQuery() {
  const params = new URLSearchParams({ view, offset, limit: PAGE });
  const q = document.getElementById("f-q").value.trim();
  if (q.length >= 2) params.set("q", q);
  if (document.getElementById("f-urgent").checked) params.set("urgent", "1");
  for (const [id, name] of [["f-outcome", "outcome"], ["f-channel", "channel"], ["f-language", "language"]]) {
    const v = document.getElementById(id).value;
    if (v) params.set(name, v);
  }
  const older = parseInt(document.getElementById("f-older").value, 10);
  if (older > 0) params.set("older_than", String(older));
  return params.toString();
}

async function refreshList() {
  const mine = ++listRequest;
  const r = await api("conversations?" + filterQuery());
  if (mine !== listRequest) return;  // the filters changed meanwhile
  total = r.total;
  document.getElementById("waiting").replaceChildren(...r.items.map(listCard));
  document.getElementById("list-title").textContent = view === "mine" ? "Mine" : "Waiting";
  document.getElementById("waiting-count").textContent = r.total;
  // A bounded scan says so: the officer knows to narrow the filters.
  const notes = [];
  if (!r.scan.complete) notes.push(`filtered the first ${r.scan.examined}`);
  if (r.search && !r.search.complete) notes.push(`searched the first ${r.search.transcripts_read} transcripts`);
  document.getElementById("scan-note").textContent = notes.length ? "(" + notes.join("; ") + ")" : "";
  document.getElementById("pager").hidden = r.total <= PAGE && r.offset === 0;
  document.getElementById("page-info").textContent = r.items.length
    ? (r.offset + 1) + "–" + (r.offset + r.items.length) + " of " + r.total : "none";
  document.getElementById("prev-page").disabled = document.getElementById("first-page").disabled = r.offset === 0;
  document.getElementById("next-page").disabled = document.getElementById("last-page").disabled = r.offset + PAGE >= r.total;
  document.getElementById("bulk").hidden = view !== "waiting";
  document.getElementById("select-page").checked = r.items.length > 0 && r.items.every((c) => selected.has(c.id));
  showBulk();
}

function showBulk() {
  document.getElementById("bulk-count").textContent = selected.size;
  document.getElementById("bulk-resolve").disabled = selected.size === 0;
}

async function refreshQueue() {
  await refreshList();
  const q = await api("queue?limit=1");
  const held = document.getElementById("held");
  held.replaceChildren(...q.held.map(card));
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
  const { conversation: c, transcript, notes } = await api("conversations/" + encodeURIComponent(id));
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
    (c.thread_elsewhere ? " · the last handover gave this thread to the page's own inbox on Meta: reply there (Meta refuses Beacon's replies while it holds it)" : "") +
    (c.notice_sent ? " · 911 notice sent by the safety net" : "") +
    (c.delivery_error ? ` · delivery error: ${c.delivery_error}` : "") +
    (c.log_ref ? ` · logs: ${c.log_ref}` : "");
  head.append(title, info);
  document.getElementById("notes").replaceChildren(...(notes || []).map((n) => {
    const li = document.createElement("li");
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = n.staff + " · " + new Date(n.ts * 1000).toLocaleString();
    li.append(who, n.text);
    return li;
  }));
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
  document.body.dataset.duty = r.on_duty.includes(me) ? "on" : "off";
}
document.getElementById("duty").addEventListener("change", (e) => {
  // Going on duty is a click: the moment a browser lets a page make sound and ask to notify.
  if (e.target.checked) prepareAlerts();
  setDuty(e.target.checked).catch((err) => say(err.message));
});

// -- alerts: a new urgent conversation while on duty -------------------------------------------
// A short tone made with the Web Audio API (no audio file) and a system notification, so an
// officer doing other work hears and sees it. Counted on window for the browser tests.
window.beaconAlerts = 0;
window.beaconAlertLog = [];
let audio = null;
const alerted = new Map();      // conversation -> when it last alerted
const REALERT_MS = 10 * 60 * 1000;

function prepareAlerts() {
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === "suspended") audio.resume();
  } catch (e) { audio = null; }
  // Asked once, when the officer first goes on duty; the browser remembers the answer.
  if ("Notification" in window && Notification.permission === "default" &&
      !localStorage.getItem("beacon-notify-asked")) {
    localStorage.setItem("beacon-notify-asked", "1");
    Notification.requestPermission().catch(() => {});
  }
}

// A browser keeps sound off in a page nobody has clicked yet (a restored tab, a bookmark
// opened in a new tab): say so while on duty, and turn it on at the first click or key
// (found by the live attack: an alert in a reopened tab made no sound and said nothing).
function soundState() {
  const off = document.getElementById("duty").checked && (!audio || audio.state !== "running");
  document.getElementById("sound-off").hidden = !off;
  return !off;
}
for (const kind of ["click", "keydown"]) {
  document.addEventListener(kind, () => {
    if (!document.getElementById("duty").checked) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume().then(soundState, soundState);
    } catch (e) { audio = null; }
    soundState();
  });
}
setInterval(soundState, 2000);

function beep() {
  if (!audio || audio.state !== "running") return false;
  const t = audio.currentTime;
  for (const [start, freq] of [[0, 880], [0.25, 660], [0.5, 880]]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "square";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t + start);
    gain.gain.exponentialRampToValueAtTime(0.3, t + start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + start + 0.2);
    osc.connect(gain).connect(audio.destination);
    osc.start(t + start);
    osc.stop(t + start + 0.22);
  }
  return true;
}

function alertUrgent(event) {
  if (!document.getElementById("duty").checked) return;
  const id = event.conversation || "";
  const last = alerted.get(id);
  if (last && Date.now() - last < REALERT_MS) return;  // intake and worker both announce it
  alerted.set(id, Date.now());
  const sound = beep();
  soundState();
  let notification = false;
  if ("Notification" in window && Notification.permission === "granted") {
    try {
      const n = new Notification("Beacon: new " + (event.outcome || "urgent") + " conversation", {
        body: "Waiting in the queue: " + id, tag: "beacon-" + id, requireInteraction: true });
      n.onclick = () => { window.focus(); open(id); n.close(); };
      notification = true;
    } catch (e) { /* some browsers only notify from a service worker */ }
  }
  window.beaconAlerts += 1;
  window.beaconAlertLog.push({ conversation: id, sound, notification, at: Date.now() });
}

function isNewUrgent(event) {
  return event.type === "urgent" ||
    (event.type === "queued" && (event.outcome === "emergency" || event.outcome === "crisis"));
}

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
    if (isNewUrgent(event)) alertUrgent(event);
    if (event.type === "hello") return;
    await refreshQueue();
    if (current && event.conversation === current) await open(current);
  };
  events.onerror = () => say("Live updates interrupted; reconnecting…");
  events.onopen = () => say("");
}

refreshQueue().then(() => {
  if (document.getElementById("duty").checked) { prepareAlerts(); setDuty(true); }
});
loadStaff();
listen();
setInterval(refreshQueue, 30000);  // waiting times tick even when nothing happens

function goTo(to) { offset = Math.max(0, to); refreshList().catch((e) => say(e.message)); }
document.getElementById("first-page").addEventListener("click", () => goTo(0));
document.getElementById("prev-page").addEventListener("click", () => goTo(offset - PAGE));
document.getElementById("next-page").addEventListener("click", () => goTo(offset + PAGE));
document.getElementById("last-page").addEventListener("click", () => goTo(Math.floor(Math.max(0, total - 1) / PAGE) * PAGE));

// Filters: a change starts again at the first page; typing waits for a pause.
let typing = null;
const filters = document.getElementById("filters");
filters.addEventListener("submit", (e) => { e.preventDefault(); goTo(0); });
filters.addEventListener("change", () => goTo(0));
document.getElementById("f-q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => goTo(0), 400); });
for (const tab of document.querySelectorAll("#views [data-view]")) {
  tab.addEventListener("click", () => {
    view = tab.dataset.view;
    for (const t of document.querySelectorAll("#views [data-view]")) t.setAttribute("aria-selected", String(t === tab));
    selected.clear();
    goTo(0);
  });
}

// Bulk resolve (a spam flood): the ticked conversations, with a reason for the audit log.
document.getElementById("select-page").addEventListener("change", (e) => {
  for (const tick of document.querySelectorAll("#waiting .pick")) {
    tick.checked = e.target.checked;
    e.target.checked ? selected.add(tick.closest(".card").dataset.id) : selected.delete(tick.closest(".card").dataset.id);
  }
  showBulk();
});
document.getElementById("bulk-resolve").addEventListener("click", async () => {
  const reason = document.getElementById("bulk-reason").value.trim();
  if (!reason) { say("Give a reason for the audit log first."); document.getElementById("bulk-reason").focus(); return; }
  if (!confirm(`Resolve ${selected.size} conversations? Reason: ${reason}`)) return;
  try {
    const r = await api("bulk-resolve", { method: "POST", body: JSON.stringify({ ids: [...selected], reason }) });
    const refused = Object.keys(r.refused).length;
    say(`Resolved ${r.resolved.length}` + (refused ? `; ${refused} left alone (held by someone else or already closed)` : "") + ".");
    selected.clear();
    document.getElementById("bulk-reason").value = "";
  } catch (e) { say(e.message); }
  await refreshQueue();
});

// Private notes between staff: shown here only, never sent to the citizen.
document.getElementById("note-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const box = document.getElementById("note");
  const text = box.value.trim();
  if (!text || !current) return;
  try {
    await api("conversations/" + encodeURIComponent(current) + "/notes", { method: "POST", body: JSON.stringify({ text }) });
    box.value = "";
    say("");
  } catch (err) { say(err.message); }
  await open(current);
});
