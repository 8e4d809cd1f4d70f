// LayerLab's small script: what HTML and htmx cannot do on their own.
// Drag to reorder layers, click a diagram box to select it, Ctrl+Z to undo.
(function () {
  "use strict";

  function modelId() {
    var editor = document.querySelector(".editor");
    return editor ? editor.dataset.modelId : null;
  }

  function enableDrag() {
    var list = document.getElementById("layer-list");
    if (!list || list.dataset.sortable || typeof Sortable === "undefined") return;
    list.dataset.sortable = "1";
    Sortable.create(list, {
      handle: ".drag-handle",
      animation: 120,
      onEnd: function (event) {
        if (event.oldIndex === event.newIndex) return;
        var layerId = event.item.dataset.layerId;
        htmx.ajax("POST", "/models/" + modelId() + "/layers/" + layerId + "/move",
          { values: { position: String(event.newIndex) }, swap: "none" });
      }
    });
  }

  document.addEventListener("click", function (event) {
    var box = event.target.closest && event.target.closest(".diagram .layer-box");
    if (!box || !modelId()) return;
    var url = "/models/" + modelId() + "?layer=" + encodeURIComponent(box.dataset.layerId);
    htmx.ajax("GET", url, { swap: "none" });
    history.pushState({}, "", url);
  });

  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if ((event.ctrlKey || event.metaKey) && event.key === "z" && tag !== "input" && tag !== "textarea") {
      var undo = document.getElementById("undo-button");
      if (undo && !undo.disabled) { event.preventDefault(); undo.click(); }
    }
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

  function refresh() { enableDrag(); showSelectedInDiagram(); }
  document.addEventListener("htmx:afterSettle", focusFirstError);
  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
})();
