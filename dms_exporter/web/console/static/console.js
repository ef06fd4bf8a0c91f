// The console's only script: local times with "12 s ago", switches that save on change,
// and the Refresh button, which polls the endpoint and swaps in its new row.
"use strict";

function ago(seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 120) return Math.round(seconds) + " s ago";
  if (seconds < 7200) return Math.round(seconds / 60) + " min ago";
  if (seconds < 172800) return Math.round(seconds / 3600) + " h ago";
  return Math.round(seconds / 86400) + " d ago";
}

function pad(n) { return String(n).padStart(2, "0"); }

function localTime(date) {
  // today: the time only; another day: the date too (the title holds the full UTC time)
  const time = pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  if (date.toDateString() === new Date().toDateString()) return time;
  return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + " " + time;
}

function showTimes(root) {
  const now = Date.now() / 1000;
  for (const el of root.querySelectorAll("time[data-ts]")) {
    const ts = Number(el.dataset.ts);
    el.textContent = localTime(new Date(ts * 1000)) + " (" + ago(now - ts) + ")";
    el.title = el.getAttribute("datetime");
  }
}

function wire(root) {
  for (const box of root.querySelectorAll("input[data-autosubmit]")) {
    box.addEventListener("change", () => box.form.submit());
  }
  for (const form of root.querySelectorAll("form[data-refresh]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const row = form.closest("tr");
      row.classList.add("refreshing");
      try {
        const answer = await fetch(form.action, {
          method: "POST", headers: {"X-Console": "fetch"}, credentials: "same-origin",
        });
        if (!answer.ok) throw new Error("HTTP " + answer.status);  // 200 even when refused
        const holder = document.createElement("tbody");
        holder.innerHTML = await answer.text();
        const fresh = holder.querySelector("tr");
        row.replaceWith(fresh);
        showTimes(fresh);
        wire(fresh);
      } catch (error) {
        row.classList.remove("refreshing");
        row.querySelector(".last-error").textContent = "refresh failed: " + error.message;
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  showTimes(document);
  wire(document);
  setInterval(() => showTimes(document), 1000);
});
