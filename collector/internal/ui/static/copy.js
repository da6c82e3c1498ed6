// Copy buttons for the enrollment page's secret and install commands
// (progressive enhancement: the buttons stay hidden without JavaScript;
// the text can be selected by hand). A button's data-copy names the
// element whose text it copies.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    var src = document.getElementById(btn.getAttribute("data-copy"));
    if (!src) return;
    btn.hidden = false;
    var label = btn.textContent;
    btn.addEventListener("click", function () {
      var text = src.textContent;
      function done(msg) {
        btn.textContent = msg;
        setTimeout(function () { btn.textContent = label; }, 2000);
      }
      function select() {
        var range = document.createRange();
        range.selectNodeContents(src);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        done("Selected: press Ctrl+C");
      }
      // The Clipboard API needs a secure context (HTTPS or localhost).
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { done("Copied"); }, select);
      } else {
        select();
      }
    });
  });
});
