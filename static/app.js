// LayerLab's small script: what HTML and htmx cannot do on their own.
// Every form and link works without it; this adds drag to reorder, Ctrl+Z to undo, selecting
// diagram boxes without a page load, keeping unsent training settings across edits, and
// showing server errors that come without a page fragment.
(function () {
  "use strict";

  function enableDrag() {
    var list = document.getElementById("layer-list");
    if (!list || list.dataset.sortable || typeof Sortable === "undefined") return;
    list.dataset.sortable = "1";
    Sortable.create(list, {
      handle: ".drag-handle",
      animation: 120,
      onEnd: function (event) {
        if (event.oldIndex === event.newIndex) return;
        htmx.ajax("POST", event.item.dataset.moveUrl, { values: { position: String(event.newIndex) }, swap: "none" });
      }
    });
  }

  // Diagram boxes are links (keyboard and no-JavaScript users follow them); here they update in place.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".diagram a.layer-link");
    if (!link || !window.htmx || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    var url = link.getAttribute("href");
    htmx.ajax("GET", url, { swap: "none" }).then(function () {
      var box = document.querySelector('.diagram a.layer-link[href="' + url + '"]');
      if (box) box.focus();
    });
    history.pushState({}, "", url);
  });

  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if ((event.ctrlKey || event.metaKey) && event.key === "z" && tag !== "input" && tag !== "textarea") {
      var undo = document.getElementById("undo-button");
      if (undo && !undo.disabled) { event.preventDefault(); undo.click(); }
    }
  });

  // The editor redraws the training panel after every edit: send the settings typed so far
  // along, so that the redrawn form keeps them.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = document.querySelector('meta[name="csrf-token"]');
    if (token && token.content) event.detail.headers["X-CSRF-Token"] = token.content;
    var source = event.detail.elt;
    if (event.detail.verb !== "post" || !source.closest || !source.closest(".editor")) return;
    // Which training panel the page shows: the server does not redraw it when an edit left it unchanged.
    var panel = document.getElementById("train-panel");
    if (panel && panel.dataset.panelKey) event.detail.parameters.panel_key = panel.dataset.panelKey;
    var form = document.getElementById("train-form");
    if (!form || form.contains(source)) return;
    var settings = new FormData(form);
    settings.forEach(function (_, name) {
      if (!(name in event.detail.parameters)) event.detail.parameters[name] = settings.getAll(name);
    });
  });

  // A refusal answered with the error page (403 for someone who may only look, 404, 409, 429...) to a button
  // whose answer swaps nothing or a single panel: its sentence is shown at the top of the page instead of
  // being dropped or swapped into the panel.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status < 400 || xhr.responseText.indexOf('class="panel error-page"') < 0) return;
    event.detail.shouldSwap = false;
    var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
    var sentence = page.querySelector(".error-page [role=alert]");
    var box = document.getElementById("refusal");
    if (!box) {
      box = document.createElement("p");
      box.id = "refusal";
      box.className = "message error";
      box.setAttribute("role", "alert");
      document.getElementById("main").prepend(box);
    }
    box.textContent = "Not done. " + (sentence ? sentence.textContent : "The server refused (error " + xhr.status + ").");
    box.scrollIntoView({ block: "nearest" });
  });

  // A whole page in answer to a form that expected a fragment of itself (a form page redrawn with its error):
  // the page's main content replaces this page's, rather than the page landing inside the form.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    if (!detail.shouldSwap || detail.xhr.responseText.indexOf('<main id="main"') < 0) return;
    if (detail.target && detail.target.id === "main") return;
    if (detail.requestConfig && detail.requestConfig.elt.closest("[hx-select]")) return;  // picks its own part
    detail.target = document.getElementById("main");
    detail.selectOverride = "#main";
    detail.swapOverride = "outerHTML";
  });

  // A server error without a page fragment (a crash, a proxy's 502): say so where people look.
  document.addEventListener("htmx:responseError", function (event) {
    var box = document.getElementById("messages") || document.getElementById("run-header");
    if (!box) return;
    var note = document.createElement("p");
    note.className = "message error";
    note.setAttribute("role", "alert");
    note.textContent = "The server could not do this (error " + event.detail.xhr.status + "). Nothing was changed; try again in a moment.";
    box.prepend(note);
  });

  function showSelectedInDiagram() {
    var box = document.querySelector(".diagram .layer-box.selected");
    var scroller = box && box.closest(".diagram-scroll");
    if (!scroller) return;
    var boxRect = box.getBoundingClientRect(), area = scroller.getBoundingClientRect();
    if (boxRect.top < area.top || boxRect.bottom > area.bottom) {
      scroller.scrollTop += boxRect.top - area.top - area.height / 2 + boxRect.height / 2;
    }
  }

  function focusFirstError(event) {
    // After a refused edit, take the keyboard (and the eye) to the field that needs fixing.
    var status = event && event.detail && event.detail.xhr ? event.detail.xhr.status : 0;
    if (status < 400) return;
    var field = document.querySelector("[aria-invalid=true]");
    if (field) { field.focus(); field.scrollIntoView({ block: "center" }); }
  }

  // The runs list: Compare takes 2 to N ticked runs. Too few or too many is said beside the button, with the
  // ticks kept, rather than on a page of its own (which the server still answers without this script).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "compare-form") return;
    var ticked = form.querySelectorAll("input[name=ids]:checked").length, most = Number(form.dataset.most);
    if (ticked >= 2 && ticked <= most) return;
    event.preventDefault();
    var hint = document.getElementById("compare-hint");
    hint.textContent = (ticked < 2 ? "Tick at least 2 runs to compare" : "Tick at most " + most + " runs to compare") +
      " (" + ticked + " ticked now).";
    hint.className = "field-error";
  });

  function refresh() { enableDrag(); showSelectedInDiagram(); }
  document.addEventListener("htmx:afterSettle", focusFirstError);
  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
})();
