// The kdbench dashboard's one script: a table.filterable is searched by row id, filtered by every
// select[data-filter] (a row's data-* attribute of that name must equal the chosen value), narrowed to one row by
// #row=KEY in the address, and sorted by a click on a column heading (th data-type="number" sorts by each cell's
// data-value). The search and filters are kept in the address (#q=kd&verdict=FAIL), so a filtered view is a link.
(function () {
  "use strict";
  const table = document.querySelector("table.filterable");
  if (!table) return;
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const search = document.getElementById("search");
  const selects = Array.from(document.querySelectorAll("select[data-filter]"));
  const shown = document.getElementById("shown");
  let onlyKey = null;

  function apply() {
    const query = search ? search.value.trim().toLowerCase() : "";
    let count = 0;
    for (const row of rows) {
      let visible = (!query || row.dataset.id.toLowerCase().includes(query)) && (!onlyKey || row.dataset.key === onlyKey);
      for (const select of selects) {
        if (select.value && row.dataset[select.dataset.filter] !== select.value) visible = false;
      }
      row.hidden = !visible;
      if (visible) count += 1;
    }
    if (shown) shown.textContent = count + " of " + rows.length + " " + (shown.dataset.noun || "rows");
    const params = new URLSearchParams();
    if (onlyKey) params.set("row", onlyKey);
    if (query) params.set("q", query);
    for (const select of selects) if (select.value) params.set(select.dataset.filter, select.value);
    const hash = params.toString();
    window.history.replaceState(null, "", hash ? "#" + hash : window.location.pathname);
  }

  function fromAddress() {  // on load, and when a link changes only the part after #
    const wanted = new URLSearchParams(window.location.hash.slice(1));
    onlyKey = wanted.get("row");
    if (search) search.value = wanted.get("q") || "";
    for (const select of selects) select.value = wanted.get(select.dataset.filter) || "";
    apply();
  }

  window.addEventListener("hashchange", fromAddress);
  if (search) search.addEventListener("input", apply);
  for (const select of selects) select.addEventListener("change", apply);

  const headings = Array.from(table.tHead.rows[0].cells);
  headings.forEach(function (heading, column) {
    heading.addEventListener("click", function () {
      const ascending = heading.getAttribute("aria-sort") !== "ascending";
      for (const other of headings) other.removeAttribute("aria-sort");
      heading.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const numeric = heading.dataset.type === "number";
      const key = function (row) {
        const cell = row.cells[column];
        const text = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
        return numeric ? (text === "" ? NaN : parseFloat(text)) : text.toLowerCase();
      };
      rows.sort(function (a, b) {
        const x = key(a), y = key(b);
        if (numeric) {
          if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);  // empty cells last either way
          return ascending ? x - y : y - x;
        }
        return ascending ? x.localeCompare(y) : y.localeCompare(x);
      });
      for (const row of rows) body.appendChild(row);
    });
  });
  fromAddress();
})();
