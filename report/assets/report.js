// scxcheck run report: a cursor with the time under the pointer, and the
// legend highlighting one owner's stretches. The page works without it.
(function () {
  document.querySelectorAll('.tl svg').forEach(function (svg) {
    var x0 = +svg.dataset.x0, w = +svg.dataset.w, t0 = +svg.dataset.t0,
        scale = +svg.dataset.scale, begin = +svg.dataset.begin;
    var cur = svg.querySelector('.cur'), read = svg.querySelector('.read');
    svg.addEventListener('mousemove', function (e) {
      var p = svg.createSVGPoint(); p.x = e.clientX; p.y = e.clientY;
      var q = p.matrixTransform(svg.getScreenCTM().inverse());
      if (q.x < x0 || q.x > x0 + w) { cur.setAttribute('visibility', 'hidden'); read.textContent = ''; return; }
      var t = t0 + (q.x - x0) * scale;
      cur.setAttribute('x1', q.x); cur.setAttribute('x2', q.x); cur.setAttribute('visibility', 'visible');
      read.textContent = (t - begin >= 0 ? '+' : '') + (t - begin).toFixed(4) + ' s  (guest ' + t.toFixed(6) + ')';
    });
  });
  document.querySelectorAll('.legend li[data-owner]').forEach(function (li) {
    var key = li.dataset.owner;
    li.addEventListener('mouseenter', function () {
      document.querySelectorAll('.tl svg').forEach(function (svg) {
        svg.classList.add('dim');
        svg.querySelectorAll('rect[data-owner]').forEach(function (r) {
          r.classList.toggle('hl', r.dataset.owner === key);
        });
      });
    });
    li.addEventListener('mouseleave', function () {
      document.querySelectorAll('.tl svg').forEach(function (svg) { svg.classList.remove('dim'); });
    });
  });
})();
