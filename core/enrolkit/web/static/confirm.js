// Destructive buttons ask first: a form carrying data-confirm (its text says what and how many)
// is sent only once the person confirms.
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
}, true);
