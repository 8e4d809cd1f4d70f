// The run page's decision-boundary player: a slider over the epochs whose weights were kept, and Play.
// Moving it points the boundary picture and every unit picture at that epoch (the server draws each once).
(function () {
  "use strict";
  var timer = null;

  function setUp() {
    var player = document.getElementById("plane-player");
    if (!player || player.dataset.ready) return;
    player.dataset.ready = "true";
    var epochs = JSON.parse(player.dataset.epochs || "[]");
    var slider = document.getElementById("plane-epoch");
    var label = document.getElementById("plane-epoch-label");
    var play = document.getElementById("plane-play");

    function show(position) {
      var epoch = epochs[position];
      label.textContent = String(epoch);
      player.querySelectorAll("img[data-src]").forEach(function (img) {
        img.src = img.dataset.src + "?epoch=" + epoch;
      });
    }

    function stop() {
      if (timer) { clearInterval(timer); timer = null; }
      play.textContent = "Play";
    }

    slider.addEventListener("input", function () { stop(); show(Number(slider.value)); });
    play.addEventListener("click", function () {
      if (timer) { stop(); return; }
      if (Number(slider.value) >= epochs.length - 1) slider.value = "0";
      show(Number(slider.value));
      play.textContent = "Pause";
      timer = setInterval(function () {
        var next = Number(slider.value) + 1;
        if (next >= epochs.length) { stop(); return; }
        slider.value = String(next);
        show(next);
      }, 450);
    });
  }

  document.addEventListener("DOMContentLoaded", setUp);
  document.addEventListener("htmx:afterSettle", function () { if (timer) { clearInterval(timer); timer = null; } setUp(); });
})();
