// The instructor's dashboard: the room's event stream says when something changed; the room is fetched again.
(function () {
  "use strict";
  var room = document.getElementById("room");
  if (!room || !window.EventSource) return;
  var eventsUrl = room.dataset.eventsUrl;
  var refreshUrl = room.dataset.refreshUrl;
  var fetching = false;

  function refresh() {
    if (fetching) return;
    fetching = true;
    fetch(refreshUrl, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var current = document.getElementById("room");
        var template = document.createElement("template");
        template.innerHTML = html.trim();
        var fresh = template.content.firstElementChild;
        if (current && fresh) current.replaceWith(fresh);
      })
      .finally(function () { fetching = false; });
  }

  var source = new EventSource(eventsUrl);
  source.addEventListener("changed", refresh);
  // Reconnects are automatic; after one, what was missed is fetched at once.
  source.addEventListener("open", refresh);
})();
