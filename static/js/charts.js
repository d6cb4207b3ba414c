/*
 * Draws every <canvas data-chart="ID"> with Chart.js (static/vendor/chartjs/chart.umd.min.js, loaded first) from
 * the JSON in <script type="application/json" id="ID">, which templates/analytics/_chart.html writes with
 * json_script. No inline script and no eval, so the site's Content-Security-Policy holds.
 *
 * The JSON (analytics.charts.Chart.data): {type: "bar"|"line", labels: [...], datasets: [{label, data}],
 * currency: "EUR" or "" , percent: bool, stacked: bool}. Numbers arrive as strings (exact decimals) and are written
 * in the page's language (<html lang>). Charts inside content htmx swaps in are drawn when it arrives, and the old
 * ones destroyed before it is replaced.
 */
(function () {
  "use strict";

  // Colour-blind-safe (Okabe–Ito), in the order the series come.
  var PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

  function language() {
    return document.documentElement.lang || undefined;
  }

  function formatter(spec) {
    var options = {};
    if (spec.currency) {
      options = { style: "currency", currency: spec.currency, maximumFractionDigits: 2 };
    }
    var format;
    try {
      format = new Intl.NumberFormat(language(), options);
    } catch (error) {
      format = new Intl.NumberFormat(undefined, options);
    }
    return function (value) {
      var text = format.format(value);
      return spec.percent ? text + " %" : text;
    };
  }

  function config(spec) {
    var write = formatter(spec);
    var narrow = window.matchMedia && window.matchMedia("(max-width: 575.98px)").matches;
    var datasets = (spec.datasets || []).map(function (dataset, index) {
      var colour = PALETTE[index % PALETTE.length];
      return {
        label: dataset.label,
        data: dataset.data.map(function (value) { return value === null ? null : Number(value); }),
        backgroundColor: colour,
        borderColor: colour,
        borderWidth: spec.type === "line" ? 2 : 0,
        tension: 0.2
      };
    });
    return {
      type: spec.type === "line" ? "line" : "bar",
      data: { labels: spec.labels || [], datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: true,
        aspectRatio: narrow ? 1.2 : 2.4,
        animation: false,
        locale: language(),
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { display: datasets.length > 1, position: "bottom" },
          tooltip: {
            callbacks: {
              label: function (context) {
                return context.dataset.label + ": " + write(context.parsed.y);
              }
            }
          }
        },
        scales: {
          x: { stacked: !!spec.stacked, ticks: { autoSkip: true, maxRotation: 0 } },
          y: { stacked: !!spec.stacked, beginAtZero: true, ticks: { callback: function (value) { return write(value); } } }
        }
      }
    };
  }

  function draw(canvas) {
    if (!window.Chart || canvas.dataset.drawn) {
      return;
    }
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) {
      return;
    }
    var spec;
    try {
      spec = JSON.parse(source.textContent);
    } catch (error) {
      return;
    }
    canvas.dataset.drawn = "true";
    new window.Chart(canvas, config(spec));
  }

  function drawAll(root) {
    root = root || document;
    if (root.matches && root.matches("canvas[data-chart]")) {
      draw(root);
      return;
    }
    root.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  function destroyAll(root) {
    if (!window.Chart || !root) {
      return;
    }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var chart = window.Chart.getChart(canvas);
      if (chart) {
        chart.destroy();
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  } else {
    drawAll(document);
  }
  document.addEventListener("htmx:beforeSwap", function (event) { destroyAll(event.detail && event.detail.target); });
  document.addEventListener("htmx:load", function (event) { drawAll(event.detail && event.detail.elt); });
})();
