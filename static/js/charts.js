// Draw every plotly figure that the server embedded in the page.
//
// A chart is a <div data-chart="ID"> whose figure is the JSON in the
// <script type="application/json" id="ID"> element. Charts are drawn on page
// load and again after htmx swaps in new content.
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false };

  function drawChart(element) {
    var source = document.getElementById(element.dataset.chart);
    if (!source || element.dataset.drawn === "true") {
      return;
    }
    var figure = JSON.parse(source.textContent);
    window.Plotly.newPlot(element, figure.data, figure.layout || {}, CONFIG);
    element.dataset.drawn = "true";
  }

  function drawCharts(root) {
    if (!window.Plotly) {
      return;
    }
    root.querySelectorAll("[data-chart]").forEach(drawChart);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
  });
  document.addEventListener("htmx:afterSettle", function () {
    drawCharts(document);
  });
})();
