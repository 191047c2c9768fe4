// Live alert queue: new alerts arrive by Server-Sent Events and are added on top.
(function () {
  const status = document.getElementById("live");
  const body = document.querySelector("#queue tbody");
  const source = new EventSource("/api/alerts/stream");
  source.onopen = () => { status.textContent = "Live: new alerts appear here."; };
  source.onerror = () => { status.textContent = "Live updates interrupted; reconnecting…"; };
  // the server ends the stream when the session is revoked, expired or the user deactivated
  source.addEventListener("end", () => {
    source.close();
    status.textContent = "Live updates stopped: your session is no longer valid. Log in again.";
  });
  source.addEventListener("alert", (msg) => {
    const a = JSON.parse(msg.data);
    if (body.querySelector(`tr[data-alert="${a.alert_id}"]`)) return;
    const row = document.createElement("tr");
    row.className = "new";
    row.dataset.alert = a.alert_id;
    const cells = [`#${a.alert_id}`, a.at.replace("T", " ").slice(0, 19), a.camera || `camera ${a.camera_id}`, a.score.toFixed(3), "pending"];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      if (i === 0) {
        const link = document.createElement("a");
        link.href = `/console/alerts/${a.alert_id}`;
        link.textContent = text;
        td.appendChild(link);
      } else {
        td.textContent = text;
      }
      if (i === 4) td.className = "status-pending";
      row.appendChild(td);
    });
    body.prepend(row);
  });
})();
