// Live network page: the console pushes the page's body (rendered on the server) over the
// WebSocket /live whenever a block commits and every few seconds; the page reads without it.
(function () {
  "use strict";
  var target = document.getElementById("network");
  var note = document.getElementById("live");
  if (!target || !window.WebSocket) { return; }
  var retryMs = 2000;
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/live");
    ws.onopen = function () { note.textContent = "Live: updates as blocks commit."; note.className = "live on"; };
    ws.onmessage = function (event) { target.innerHTML = event.data; };
    ws.onclose = function () {
      note.textContent = "Live updates lost; reconnecting…"; note.className = "live off";
      setTimeout(connect, retryMs);
    };
  }
  connect();
})();
