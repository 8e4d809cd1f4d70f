// The code page's Copy button: the script to the clipboard, and a word to say it happened.
(function () {
  "use strict";
  var button = document.getElementById("copy-code");
  if (!button) return;
  var status = document.getElementById("copy-status");
  button.addEventListener("click", function () {
    var text = document.getElementById(button.dataset.copyTarget).textContent;
    var done = function () { status.textContent = "Copied."; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { status.textContent = "Copy failed: select the code and copy it."; });
      return;
    }
    var area = document.createElement("textarea");  // plain http on a workshop network: the older way
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } catch (e) { status.textContent = "Select the code and copy it."; }
    area.remove();
  });
})();
