// Script of loadtests/site/htdocs/page.html (a static asset of the page-with-assets scenario).
document.addEventListener('DOMContentLoaded', function () {
  var stamp = document.createElement('p');
  stamp.textContent = 'Rendered at ' + new Date().toISOString();
  document.querySelector('footer').appendChild(stamp);
});
