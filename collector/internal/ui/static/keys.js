// Keyboard shortcuts for the alert queue (progressive enhancement: the
// queue works without them). / search, j/k move, x tick, o open (Enter
// too: the current row's link has the focus), n next page.
document.addEventListener("keydown", function (ev) {
  var table = document.getElementById("queue-table");
  if (!table || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  var t = ev.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
  var rows = Array.prototype.slice.call(table.tBodies[0].rows).filter(function (r) { return r.querySelector("a"); });
  var cur = rows.findIndex(function (r) { return r.classList.contains("current"); });
  function go(i) {
    if (i < 0 || i >= rows.length) return;
    if (cur >= 0) rows[cur].classList.remove("current");
    rows[i].classList.add("current");
    rows[i].querySelector("a").focus();
  }
  switch (ev.key) {
  case "/":
    var q = document.getElementById("f-q");
    if (q) { q.focus(); ev.preventDefault(); }
    break;
  case "j": go(cur + 1); break;
  case "k": go(Math.max(cur - 1, 0)); break;
  case "x":
    var box = cur >= 0 && rows[cur].querySelector("input[type=checkbox]");
    if (box) box.checked = !box.checked;
    break;
  case "o":
    if (cur >= 0) rows[cur].querySelector("a").click();
    break;
  case "n":
    var next = document.querySelector("a[rel=next]");
    if (next) next.click();
    break;
  }
});
