// The supervisors' reports page: figures from /console/api/reports, drawn with uPlot
// (static/vendor, MIT), and the same numbers in tables; CSV from /console/api/reports.csv.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const COLOURS = ["#b00020", "#6a1b9a", "#1565c0", "#2e7d32", "#ef6c00", "#00838f",
                   "#5d4037", "#9e9d24", "#455a64"];
  const charts = [];

  function iso(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  }

  function setPeriod(from, to) {
    $("from").value = from;
    $("to").value = to;
  }

  function lastDays(n) {
    const to = new Date();
    const from = new Date(to);
    from.setDate(to.getDate() - (n - 1));
    setPeriod(iso(from), iso(to));
  }

  function lastMonth() {
    const now = new Date();
    const first = new Date(now.getFullYear(), now.getMonth() - 1, 1);
    const last = new Date(now.getFullYear(), now.getMonth(), 0);
    setPeriod(iso(first), iso(last));
  }

  function seconds(value) {
    if (value === null || value === undefined) return "–";
    if (value < 120) return `${value.toFixed(1)} s`;
    return `${(value / 60).toFixed(1)} min`;
  }

  function table(el, head, rows) {
    el.replaceChildren();
    const tr = document.createElement("tr");
    for (const h of head) {
      const th = document.createElement("th");
      th.textContent = h;
      tr.append(th);
    }
    const thead = document.createElement("thead");
    thead.append(tr);
    const tbody = document.createElement("tbody");
    for (const row of rows) {
      const r = document.createElement("tr");
      for (const cell of row) {
        const td = document.createElement("td");
        td.textContent = cell === null || cell === undefined ? "–" : String(cell);
        r.append(td);
      }
      tbody.append(r);
    }
    el.append(thead, tbody);
  }

  // One chart: x is an index into ``labels``; each series a line with its points.
  function chart(el, labels, series) {
    const width = Math.max(280, el.clientWidth || 600);
    const opts = {
      width: width,
      height: 240,
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
      axes: [
        { values: (u, splits) => splits.map((i) => (Number.isInteger(i) ? labels[i] || "" : "")) },
        { size: 56 },
      ],
      legend: { live: false },
      series: [{ label: "" }].concat(series.map((s, i) => ({
        label: s.label,
        stroke: COLOURS[i % COLOURS.length],
        width: 2,
        points: { show: true, size: 6 },
        spanGaps: true,
      }))),
    };
    const data = [labels.map((_, i) => i)].concat(series.map((s) => s.values));
    el.replaceChildren();
    const plot = new uPlot(opts, data, el);
    charts.push([plot, el]);
    return plot;
  }

  function render(report) {
    for (const [plot] of charts) plot.destroy();
    charts.length = 0;
    const days = report.days;
    const p = report.period;
    $("period-text").textContent = `${p.from} to ${p.to} (${p.days} days, ${p.timezone})`;
    $("s-messages").textContent = report.messages.total;
    $("s-urgent").textContent = `${report.urgent.total} (${report.urgent.notices} notices)`;
    $("s-notice").textContent =
      `${seconds(report.urgent.notice_latency_s.median)} / ${seconds(report.urgent.notice_latency_s.p95)}`;
    $("s-first").textContent =
      `${seconds(report.first_response.median_s)} / ${seconds(report.first_response.p90_s)}`;
    $("s-offduty").textContent = report.off_duty.share === null ? "–"
      : `${(report.off_duty.share * 100).toFixed(1)}% (${report.off_duty.messages})`;
    $("s-escalations").textContent =
      `${report.escalations.total} (${report.escalations.failed})`;

    const dayTable = (el, groups) => table(el, ["day"].concat(Object.keys(groups)),
      days.map((d, i) => [d].concat(Object.values(groups).map((v) => v[i]))));

    const dayLabels = days.map((d) => d.slice(5));  // MM-DD; the tables give the year
    const outcomes = report.messages.by_outcome;
    chart($("chart-outcome"), dayLabels,
          Object.entries(outcomes).map(([k, v]) => ({ label: k, values: v })));
    dayTable($("t-outcome"), outcomes);

    const channels = report.messages.by_channel;
    chart($("chart-channel"), dayLabels,
          Object.entries(channels).map(([k, v]) => ({ label: k, values: v })));
    dayTable($("t-channel"), channels);

    const urgent = {
      urgent: report.urgent.per_day,
      "nobody on duty": report.off_duty.per_day,
      escalated: report.escalations.per_day,
      "escalation failed": report.escalations.failed_per_day,
    };
    chart($("chart-urgent"), dayLabels,
          Object.entries(urgent).map(([k, v]) => ({ label: k, values: v })));
    dayTable($("t-urgent"), urgent);

    const hours = report.first_response.by_hour;
    const hourLabels = hours.map((h) => String(h.hour).padStart(2, "0"));
    const minutes = (v) => (v === null ? null : v / 60);
    chart($("chart-hours"), hourLabels, [
      { label: "median (min)", values: hours.map((h) => minutes(h.median_s)) },
      { label: "p90 (min)", values: hours.map((h) => minutes(h.p90_s)) },
    ]);
    table($("t-hours"), ["hour", "answered", "median (s)", "p90 (s)"],
          hours.map((h) => [`${hourLabels[h.hour]}:00`, h.count, h.median_s, h.p90_s]));

    const shifts = report.unanswered_at_shift_end;
    chart($("chart-shifts"), shifts.map((s) => s.shift_end.slice(5, 16).replace("T", " ")), [
      { label: "unanswered", values: shifts.map((s) => s.unanswered) },
    ]);
    table($("t-shifts"), ["shift end", "unanswered"],
          shifts.map((s) => [s.shift_end.slice(0, 16).replace("T", " "), s.unanswered]));
    $("report").hidden = false;
    document.body.dataset.rendered = "1";
  }

  async function load() {
    const query = new URLSearchParams({ from: $("from").value, to: $("to").value });
    $("csv").href = `/console/api/reports.csv?${query}`;
    history.replaceState(null, "", `?${query}`);
    $("status").textContent = "Loading…";
    document.body.dataset.rendered = "";
    const response = await fetch(`/console/api/reports?${query}`, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) {
      $("status").textContent = body.error || `error ${response.status}`;
      return;
    }
    $("status").textContent = "";
    render(body);
  }

  window.addEventListener("resize", () => {
    for (const [plot, el] of charts) plot.setSize({ width: Math.max(280, el.clientWidth), height: 240 });
  });
  $("period").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  $("last-7").addEventListener("click", () => { lastDays(7); load(); });
  $("last-month").addEventListener("click", () => { lastMonth(); load(); });
  $("print").addEventListener("click", () => window.print());
  const params = new URLSearchParams(location.search);
  if (params.get("from") && params.get("to")) setPeriod(params.get("from"), params.get("to"));
  else lastDays(7);
  load();
})();
