// Live alert queue: new alerts arrive by Server-Sent Events and are added on top, as the same
// row the page shows (fetched from /console/alerts/{id}/row: thumbnail, candidate, score,
// camera, time, state). The stream itself carries no names.
(function () {
  const status = document.getElementById("live");
  const body = document.querySelector("#queue tbody");
  if (!body || body.dataset.live !== "1") return;
  // from the newest alert this page shows: none committed while the stream connects is missed
  // (a reconnecting EventSource resumes by itself, on whichever server answers, from the last
  // event id it received: the alert's cursor, its place in commit order, not its alert id)
  const newest = Math.max(0, ...Array.from(body.querySelectorAll("tr[data-alert]"), (r) => Number(r.dataset.alert)));
  const source = new EventSource(`/api/alerts/stream?after=${newest}`);
  source.onopen = () => { status.textContent = "Live: new alerts appear here."; };
  source.onerror = () => { status.textContent = "Live updates interrupted; reconnecting…"; };
  // the server ends the stream when the session is revoked, expired or the user deactivated
  source.addEventListener("end", () => {
    source.close();
    status.textContent = "Live updates stopped: your session is no longer valid. Log in again.";
  });
  source.addEventListener("alert", async (msg) => {
    const a = JSON.parse(msg.data);
    if (body.querySelector(`tr[data-alert="${a.alert_id}"]`)) return;
    const response = await fetch(`/console/alerts/${a.alert_id}/row`, { credentials: "same-origin" });
    if (!response.ok) return;
    const holder = document.createElement("tbody");
    holder.innerHTML = await response.text();  // rendered and escaped by the server
    const row = holder.querySelector("tr");
    if (!row || body.querySelector(`tr[data-alert="${a.alert_id}"]`)) return;
    body.prepend(row);
    const empty = document.querySelector("p.empty");
    if (empty) empty.remove();
    const count = document.querySelector("nav.pager .muted");  // "nothing matches" no longer holds
    if (count) count.textContent = `${body.querySelectorAll("tr[data-alert]").length} shown, newest live`;
  });
})();
