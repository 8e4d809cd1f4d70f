// The run page: draws the loss and metric curves and keeps them live over Server-Sent Events.
(function () {
  "use strict";
  var page = document.querySelector(".run-page");
  if (!page) return;
  var history = JSON.parse(document.getElementById("run-history").textContent || "{}");
  var epochs = (history.epochs || []).slice();
  var batches = (history.batches || []).slice();
  var best = page.dataset.bestEpoch ? Number(page.dataset.bestEpoch) : null;  // the server decides it
  var charts = {};
  var pending = false;
  var source = null;
  var COLOURS = { train: "#2456c7", val: "#e07a1f", batch: "rgba(36, 86, 199, 0.35)" };

  function bestEpoch() { return best; }

  function metricName() {
    var logs = (epochs[0] || {}).logs || {};
    var names = Object.keys(logs).filter(function (k) { return k !== "loss" && k.indexOf("val_") !== 0; });
    return names[0] || null;
  }

  function markBest(u) {
    var best = bestEpoch();
    if (best == null) return;
    var x = u.valToPos(best, "x", true), ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#17803d"; ctx.setLineDash([5, 4]); ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    ctx.fillStyle = "#17803d"; ctx.font = "12px sans-serif"; ctx.textBaseline = "top";
    var label = "best epoch " + best, room = u.bbox.left + u.bbox.width - x;
    var flip = ctx.measureText(label).width + 8 > room;
    ctx.textAlign = flip ? "right" : "left";
    ctx.fillText(label, flip ? x - 4 : x + 4, u.bbox.top + 4);
    ctx.restore();
  }

  function batchesAddDetail() {
    // Batch losses come at most a few times a second: when epochs are shorter than that, the epoch points
    // already say more, and a handful of batch points would only draw a stray stroke.
    return batches.length > epochs.length;
  }

  function seriesData(key) {
    // One x axis in epochs: batch points fall between epoch marks.
    var points = {};
    batches.forEach(function (b) {
      if (key !== "loss" || b.loss == null || !batchesAddDetail()) return;
      var x = (b.epoch - 1) + b.step / (b.steps || 1);
      points[x] = points[x] || [null, null, null];
      points[x][2] = b.loss;
    });
    epochs.forEach(function (e) {
      var logs = e.logs || {};
      points[e.epoch] = points[e.epoch] || [null, null, null];
      points[e.epoch][0] = logs[key] != null ? logs[key] : null;
      points[e.epoch][1] = logs["val_" + key] != null ? logs["val_" + key] : null;
    });
    var xs = Object.keys(points).map(Number).sort(function (a, b) { return a - b; });
    return [xs, xs.map(function (x) { return points[x][0]; }), xs.map(function (x) { return points[x][1]; }),
            xs.map(function (x) { return points[x][2]; })];
  }

  function makeChart(element, key, label) {
    var width = Math.max(280, element.clientWidth - 8);
    var series = [{ label: "epoch" },
      { label: label, stroke: COLOURS.train, width: 2, points: { show: true, size: 5 }, spanGaps: true },
      { label: "val " + label, stroke: COLOURS.val, width: 2, points: { show: true, size: 5 }, spanGaps: true }];
    // Batch points are drawn as dots only while they are few and far apart (uPlot's default), so that the
    // first batches of a long first epoch show before a line can.
    if (key === "loss") series.push({ label: "batch loss", stroke: COLOURS.batch, width: 1, points: { size: 3 }, spanGaps: true });
    element.textContent = "";
    return new uPlot({
      width: width, height: 260, series: series,
      scales: { x: { time: false } },
      axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] }, {}],
      hooks: { draw: [markBest] },
    }, key === "loss" ? seriesData(key) : seriesData(key).slice(0, 3), element);
  }

  function draw() {
    pending = false;
    if (typeof uPlot === "undefined") return;
    var lossBox = document.getElementById("loss-chart"), metricBox = document.getElementById("metric-chart");
    if (!charts.loss) charts.loss = makeChart(lossBox, "loss", "loss");
    else charts.loss.setData(seriesData("loss"));
    var metric = metricName();
    if (metric && !charts.metric) {
      charts.metric = makeChart(metricBox, metric, metric);
      document.getElementById("metric-title").firstChild.textContent = metric.charAt(0).toUpperCase() + metric.slice(1) + " ";
    } else if (metric) charts.metric.setData(seriesData(metric).slice(0, 3));
    if (!metric) metricBox.textContent = "Metrics appear after the first epoch.";
  }

  function redraw() {
    if (!pending) { pending = true; requestAnimationFrame(draw); }
  }

  function formatSeconds(s) {
    if (s == null) return "";
    return s < 90 ? Math.round(s) + " s" : Math.round(s / 60) + " min";
  }

  function showProgress(text, value) {
    var bar = document.getElementById("run-progress"), label = document.getElementById("run-progress-text");
    if (bar && value != null) bar.value = value;
    if (label) label.textContent = text;
  }

  function refreshPage() {
    var header = document.getElementById("run-header");
    if (window.htmx && header) htmx.ajax("GET", header.dataset.pageUrl, { swap: "none" });
  }

  // Listen while the run is active, and also while it could be resumed (from this tab or
  // another): the stream then brings the resume, and the page follows it live.
  var refused = false;  // the server would not open a stream (too many open pages): do not keep asking

  function listen() {
    var header = document.getElementById("run-header");
    if (source || refused || !header || header.dataset.follow !== "true") return;
    var url = header.dataset.eventsUrl + "?follow=true&after=" + (header.dataset.lastEvent || "0");
    var opened = false;
    source = new EventSource(url);
    source.onopen = function () { opened = true; };
    source.addEventListener("batch", function (event) {
      var b = JSON.parse(event.data);
      batches.push(b);
      showProgress("Epoch " + b.epoch + " · step " + b.step + " of " + b.steps + " · loss " + Number(b.loss).toFixed(4));
      redraw();
    });
    source.addEventListener("epoch", function (event) {
      var e = JSON.parse(event.data);
      epochs = epochs.filter(function (old) { return old.epoch !== e.epoch; });
      epochs.push(e);
      if (e.best_epoch != null) best = e.best_epoch;
      showProgress("Epoch " + e.epoch + " of " + e.epochs + (e.eta_s ? " · about " + formatSeconds(e.eta_s) + " left" : ""), e.epoch);
      redraw();
    });
    source.addEventListener("started", refreshPage);
    source.addEventListener("state", function (event) {
      var s = JSON.parse(event.data).state;
      var badge = document.getElementById("run-state");
      if (badge) { badge.textContent = s; badge.className = "badge state-" + s; }
      refreshPage();  // buttons, reasons and results change with the state
    });
    source.onerror = function () {
      // The browser reconnects by itself with Last-Event-ID; when the server ends the stream
      // (the run can no longer change), stop listening. A stream refused at once stays closed.
      if (!source || source.readyState !== EventSource.CLOSED) return;
      source = null;
      if (!opened) {
        refused = true;
        showProgress("Live updates are paused: this browser has too many run pages open. Close some, then reload.");
        return;
      }
      refreshPage();
    };
  }

  function stopWhenFinal() {
    // The redrawn header says whether the run can still change; a final one needs no stream.
    var header = document.getElementById("run-header");
    if (source && header && header.dataset.follow !== "true") { source.close(); source = null; }
    listen();
  }

  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (k) { charts[k].destroy(); delete charts[k]; });
    redraw();
  });
  document.addEventListener("DOMContentLoaded", function () { draw(); listen(); });
  document.addEventListener("htmx:afterSettle", stopWhenFinal);
})();
