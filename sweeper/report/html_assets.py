"""The HTML page's own style and scripts, inlined into it (no font, stylesheet or script is fetched): system fonts,
a column of readable width, a sticky bar of links to the page's parts, the answer box, tables that scroll inside
their own box (sideways, and down with a sticky header when long) so the page never does; a script that sorts a
table by the column clicked, and one that opens a collapsed table when a link leads to it.
"""

from __future__ import annotations

STYLE = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d8dee4;--soft:#f6f8fa;--accent:#0969da;--best:#e6f4ea}
*{box-sizing:border-box}
html{scroll-behavior:smooth}
body{margin:0;color:var(--ink);background:#fff;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,"Noto Sans",sans-serif}
main{max-width:1180px;margin:0 auto;padding:0 24px 48px}
h2{font-size:1.2rem;margin:0 0 .4rem}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
header.bar{position:sticky;top:0;z-index:10;background:rgba(255,255,255,.96);border-bottom:1px solid var(--line)}
header.bar .in{max-width:1180px;margin:0 auto;padding:8px 24px;display:flex;flex-wrap:wrap;gap:4px 24px;
align-items:baseline}
header.bar h1{font-size:1rem;margin:0 auto 0 0;line-height:1.4}
header.bar nav{display:flex;flex-wrap:wrap;gap:4px 18px}
section{scroll-margin-top:56px;margin:1.6rem 0}
.answer{border:1px solid #9cc3e6;border-left:6px solid var(--accent);background:#f3f8fd;border-radius:8px;
padding:14px 20px;margin-top:1.2rem}
.answer .scope{color:var(--muted);margin:0 0 .6rem}
.answer dl{margin:0;display:grid;grid-template-columns:13rem 1fr;gap:6px 16px}
.answer .item{display:contents}
.answer dt{font-weight:600}
.answer dd{margin:0}
.answer .mean,.answer .ci,.answer .n{font-weight:600;font-variant-numeric:tabular-nums}
.answer ul.list{margin:.2rem 0 0;padding-left:1.1rem}
.answer ul.list li{margin:0}
.answer .how{display:block;color:var(--muted);font-size:.85rem;margin-top:2px}
ul.toc{margin:.2rem 0 .8rem;padding-left:1.2rem;columns:2 22rem;font-size:.92rem}
.about ul{margin:.2rem 0;padding-left:1.2rem;color:var(--muted);font-size:.92rem}
.figure{margin:.6rem 0 1.4rem;border:1px solid var(--line);border-radius:6px;padding:4px}
details{border:1px solid var(--line);border-radius:6px;margin:.7rem 0;background:#fff}
details>summary{cursor:pointer;padding:8px 12px;background:var(--soft);border-radius:6px;list-style-position:inside}
details[open]>summary{border-bottom:1px solid var(--line);border-radius:6px 6px 0 0}
details>summary h2{display:inline;font-size:1.05rem;margin:0}
details .body{padding:4px 12px 10px}
details .body p{margin:.4rem 0;color:var(--muted);font-size:.92rem}
details .body ul{margin:.3rem 0;padding-left:1.2rem;font-size:.92rem}
.scroll{overflow:auto;max-width:100%;max-height:75vh;border:1px solid var(--line);border-radius:4px;margin:.5rem 0}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums;width:max-content;min-width:100%}
th,td{padding:3px 9px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
td{white-space:nowrap}
td.num{text-align:right}
th{position:sticky;top:0;background:var(--soft);cursor:pointer;font-weight:600;border-bottom:1px solid var(--line);
user-select:none}
th:hover{background:#eaeef2}
th[data-dir=asc]::after{content:" \\25B2";font-size:.7em}
th[data-dir=desc]::after{content:" \\25BC";font-size:.7em}
tbody tr:nth-child(even){background:#fbfcfd}
tr.best,tbody tr.best:nth-child(even){font-weight:600;background:var(--best)}
.notes p{color:var(--muted);font-size:.92rem;margin:.3rem 0}
@media (max-width:800px){.answer dl{grid-template-columns:1fr}.answer dd{margin-bottom:6px}}
"""
# Click a header to sort by that column (again to reverse): numbers by value (a leading star, "[" or "±..." aside),
# numbers before text, "-" (missing) last.
SORT_JS = """
document.querySelectorAll("table").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.title = "click to sort";
    th.addEventListener("click", function () {
      var dir = th.dataset.dir === "asc" ? -1 : 1;
      table.querySelectorAll("thead th").forEach(function (other) { delete other.dataset.dir; });
      th.dataset.dir = dir === 1 ? "asc" : "desc";
      function key(row) {
        var text = row.cells[col].textContent.replace(/^[\\u2605\\s\\[]+/, "");
        var x = parseFloat(text);
        return text === "-" ? null : isNaN(x) ? text : x;
      }
      var rows = Array.from(table.tBodies[0].rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
        if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
      rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
    });
  });
});
"""
# A link to a table folded away opens it.
OPEN_JS = """
function openTarget() {
  var id = decodeURIComponent(location.hash.slice(1));
  var at = id && document.getElementById(id);
  var fold = at && (at.tagName === "DETAILS" ? at : at.querySelector("details") || at.closest("details"));
  if (fold) fold.open = true;
}
window.addEventListener("hashchange", openTarget);
openTarget();
"""
