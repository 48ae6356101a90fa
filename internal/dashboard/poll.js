// Shared by both status pages (inserted by package dashboard): escaping,
// and polling the JSON /status every second. Each page defines
// render(status, secondsSinceLastPoll) and reads `last` (the previous
// status) for rates.
let last = null, lastAt = 0;
function esc(s) { return String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"})[c]); }
async function tick() {
  try {
    const tok = new URLSearchParams(location.search).get("token");
    const r = await fetch(tok ? "status?token=" + encodeURIComponent(tok) : "status", {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    const st = await r.json();
    const now = performance.now();
    render(st, last ? (now - lastAt) / 1000 : 0);
    last = st; lastAt = now;
    document.getElementById("status").textContent = "live · " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("status").textContent = "status unavailable: " + e.message;
  }
}
window.addEventListener("load", () => { tick(); setInterval(tick, 1000); });
