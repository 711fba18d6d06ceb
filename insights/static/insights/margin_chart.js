// Revenue and COGS by day on the margin page (Chart.js, vendored).
(function () {
  var data = JSON.parse(document.getElementById("margin-data").textContent);
  var canvas = document.getElementById("margin-chart");
  if (!canvas || typeof Chart === "undefined") { return; }
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { label: "Revenue (" + data.currency + ")", data: data.revenue, backgroundColor: "#2f6feb" },
        { label: "COGS (" + data.currency + (data.converted_from ? ", from " + data.converted_from + " at each day's exchange rate" : "") + ")", data: data.cogs, backgroundColor: "#d4a72c" }
      ]
    },
    options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } }
  });
})();
