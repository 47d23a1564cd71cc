// msgrelay console: live progress bars, counts, the job's chart and account rates, by polling small JSON.
"use strict";
const FINAL = new Set(["done", "cancelled"]);
const BAR = ["delivered", "failed", "expired", "rejected", "unknown", "submitted"];
const num = (n) => Number(n || 0).toLocaleString("en-US");

function paint(el, state) {
  const total = state.total || 0;
  for (const s of BAR) {
    const seg = el.querySelector(`.seg[data-status="${s}"]`);
    if (seg) {
      seg.style.width = total ? `${(100 * (state.counts[s] || 0)) / total}%` : "0%";
      seg.title = `${s} ${num(state.counts[s])}`;
    }
  }
  const bar = el.querySelector(".bar");
  if (bar) bar.setAttribute("aria-valuenow", String(total - (state.counts.queued || 0)));
  const chip = el.querySelector('[data-field="status"]') || document.querySelector('h1 [data-field="status"]');
  if (chip) { chip.textContent = state.status; chip.className = `chip ${state.status}`; }
  const why = el.querySelector('[data-field="why"]');
  if (why) why.textContent = state.reason || state.waiting || "";
  const summary = el.querySelector('[data-field="summary"]');
  if (summary) {
    const open = (state.counts.queued || 0) + (state.counts.submitted || 0);
    summary.textContent = `${num(total - open)} of ${num(total)} final · ${num(state.counts.delivered)} delivered`;
  }
  for (const cell of el.querySelectorAll("[data-count]")) cell.textContent = num(state.counts[cell.dataset.count]);
  el.dataset.status = state.status;
}

async function poll(url) {
  const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (answer.status === 401) { window.location = "/ui/login?next=" + encodeURIComponent(location.pathname); return null; }
  return answer.ok ? answer.json() : null;
}

function liveJobs() {
  const holders = [...document.querySelectorAll("[data-job]")];
  if (!holders.length) return;
  const tick = async () => {
    const open = holders.filter((el) => !FINAL.has(el.dataset.status || el.querySelector('[data-field="status"]')?.textContent || ""));
    if (!open.length) return;
    const states = await poll("/ui/live/jobs?ids=" + open.map((el) => el.dataset.job).join(","));
    if (states) for (const el of open) if (states[el.dataset.job]) paint(el, states[el.dataset.job]);
    setTimeout(tick, 1500);
  };
  setTimeout(tick, 1500);
}

function liveChart() {
  const box = document.querySelector("[data-chart]");
  if (!box || box.dataset.running !== "1") return;
  const tick = async () => {
    const answer = await fetch(box.dataset.chart, { credentials: "same-origin" });
    if (answer.ok) box.innerHTML = await answer.text();
    const holder = document.querySelector("section.progress[data-job]");
    if (holder && FINAL.has(holder.dataset.status)) return;
    setTimeout(tick, 3000);
  };
  setTimeout(tick, 3000);
}

function liveAccounts() {
  const table = document.querySelector("table.accounts[data-live]");
  if (!table) return;
  const tick = async () => {
    const states = await poll(table.dataset.live);
    if (states) for (const row of table.querySelectorAll("tr[data-account]")) {
      const s = states[row.dataset.account];
      if (!s) continue;
      row.querySelector('[data-field="rate"]').textContent = s.rate.per_s.toFixed(1);
      row.querySelector('[data-field="minute"]').textContent = `${num(s.rate.last_minute)} in the last minute`;
      row.querySelector('[data-field="warning"]').textContent = s.warning ? `⚠ ${s.warning}` : "";
    }
    setTimeout(tick, 3000);
  };
  setTimeout(tick, 3000);
}

document.addEventListener("DOMContentLoaded", () => { liveJobs(); liveChart(); liveAccounts(); });
