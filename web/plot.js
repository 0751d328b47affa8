/* plot.js: the small SVG chart generator shared by the live dashboard and the one-file report
 * (docs/dashboard.md says why it is hand-written). Each function returns an SVG string: no DOM
 * needed, nothing fetched. Every data point is one element with class "pt" (tests count them),
 * and a <title> child that browsers show as a tooltip with the numbers behind it. */
"use strict";
var Plot = (function () {
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf"];

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c];
    });
  }

  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
    return String(Math.round(v * 10000) / 10000);
  }

  /* About n "nice" tick values covering [lo, hi]. */
  function ticks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; lo = lo - 1; }
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    var err = (hi - lo) / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
      out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    return out;
  }

  function extent(vals, pad) {
    var lo = Infinity, hi = -Infinity;
    vals.forEach(function (v) { if (isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } });
    if (lo === Infinity) return [0, 1];
    if (lo === hi) return [lo - (Math.abs(lo) || 1) * 0.05, hi + (Math.abs(hi) || 1) * 0.05];
    var p = (hi - lo) * (pad || 0.05);
    return [lo - p, hi + p];
  }

  function frame(o, W, H, m, xs, ys, xd, yd, yfmt) {
    var s = "";
    s += '<rect x="' + m.l + '" y="' + m.t + '" width="' + (W - m.l - m.r) + '" height="' +
         (H - m.t - m.b) + '" class="bg"/>';
    ticks(xd[0], xd[1], 5).forEach(function (t) {
      var x = xs(t);
      s += '<line class="grid" x1="' + x + '" x2="' + x + '" y1="' + m.t + '" y2="' + (H - m.b) + '"/>';
      s += '<text class="tick" x="' + x + '" y="' + (H - m.b + 14) + '" text-anchor="middle">' +
           fmt(t) + "</text>";
    });
    ticks(yd[0], yd[1], 4).forEach(function (t) {
      var y = ys(t);
      s += '<line class="grid" x1="' + m.l + '" x2="' + (W - m.r) + '" y1="' + y + '" y2="' + y + '"/>';
      s += '<text class="tick" x="' + (m.l - 4) + '" y="' + (y + 4) + '" text-anchor="end">' +
           (yfmt ? yfmt(t) : fmt(t)) + "</text>";
    });
    if (o.xlabel)
      s += '<text class="label" x="' + ((m.l + W - m.r) / 2) + '" y="' + (H - 4) +
           '" text-anchor="middle">' + esc(o.xlabel) + "</text>";
    if (o.ylabel)
      s += '<text class="label" transform="translate(12,' + ((m.t + H - m.b) / 2) +
           ') rotate(-90)" text-anchor="middle">' + esc(o.ylabel) + "</text>";
    return s;
  }

  function legend(series, W, m) {
    var s = "", x = m.l + 4;
    series.forEach(function (se, i) {
      if (!se.name) return;
      var c = se.color || COLORS[i % COLORS.length];
      s += '<rect x="' + x + '" y="4" width="10" height="10" fill="' + c + '"/>';
      s += '<text class="legend" x="' + (x + 14) + '" y="13">' + esc(se.name) + "</text>";
      x += 24 + 7 * String(se.name).length;
    });
    return s;
  }

  function empty(o, W, H, why) {
    return '<svg class="chart" data-chart="' + esc(o.id || "") + '" viewBox="0 0 ' + W + " " + H +
           '" width="' + W + '" height="' + H + '"><text class="empty" x="' + W / 2 + '" y="' +
           H / 2 + '" text-anchor="middle">' + esc(why) + "</text></svg>";
  }

  /* Points and lines. o: {id, series: [{name, color, line, points: [[x, y, title, [lo, hi]],
   * ...]}], xlabel, ylabel, diagonal (draw y = x), hlines: [{y, label, soft}], xdomain, ydomain,
   * w, h}. A soft line widens the y axis at most to three times the data's span; beyond, it is
   * drawn at the edge with an arrow (a target's objective far from the proxies' predictions).
   * A point's optional [lo, hi] is drawn as a vertical whisker (class "whisker") when both ends
   * are finite. */
  function xy(o) {
    if (o.ylog) return xy(logY(o));
    var W = o.w || 420, H = o.h || 260, m = {l: 56, r: 12, t: 20, b: 34};
    var xsv = [], ysv = [];
    o.series.forEach(function (se) {
      se.points.forEach(function (p) {
        xsv.push(p[0]); ysv.push(p[1]);
        if (p[3]) ysv.push(p[3][0], p[3][1]);
      });
    });
    (o.hlines || []).forEach(function (h) { if (!h.soft) ysv.push(h.y); });
    if (!xsv.length) return empty(o, W, H, o.empty || "no data yet");
    var xd = o.xdomain || extent(xsv), yd = o.ydomain || extent(ysv, 0.08);
    (o.hlines || []).forEach(function (h) {
      if (!h.soft || !isFinite(h.y) || o.ydomain) return;
      var span = yd[1] - yd[0];
      if (h.y < yd[0] && h.y >= yd[0] - 2 * span) yd = [h.y - span * 0.05, yd[1]];
      if (h.y > yd[1] && h.y <= yd[1] + 2 * span) yd = [yd[0], h.y + span * 0.05];
    });
    if (o.diagonal) {
      var lo = Math.min(xd[0], yd[0]), hi = Math.max(xd[1], yd[1]);
      xd = [lo, hi]; yd = [lo, hi];
    }
    var xs = function (v) { return m.l + (v - xd[0]) / (xd[1] - xd[0]) * (W - m.l - m.r); };
    var ys = function (v) { return H - m.b - (v - yd[0]) / (yd[1] - yd[0]) * (H - m.t - m.b); };
    var s = frame(o, W, H, m, xs, ys, xd, yd, o.yfmt);
    if (o.diagonal)
      s += '<line class="diag" x1="' + xs(xd[0]) + '" y1="' + ys(xd[0]) + '" x2="' + xs(xd[1]) +
           '" y2="' + ys(xd[1]) + '"/>';
    (o.hlines || []).forEach(function (h) {
      if (!isFinite(h.y)) return;
      var y = ys(Math.min(Math.max(h.y, yd[0]), yd[1]));
      var v = h.value !== undefined ? h.value : h.y;
      var off = h.y > yd[1] ? " ↑ " + fmt(v) : h.y < yd[0] ? " ↓ " + fmt(v) : "";
      s += '<line class="hline" x1="' + m.l + '" x2="' + (W - m.r) + '" y1="' + y + '" y2="' + y +
           '"><title>' + esc(h.label + ": " + fmt(v)) + "</title></line>";
      s += '<text class="hlabel" x="' + (W - m.r - 2) + '" y="' + (h.y < yd[0] ? y - 3 : off ?
           y + 11 : y - 3) + '" text-anchor="end">' + esc(h.label + off) + "</text>";
    });
    o.series.forEach(function (se, i) {
      var c = se.color || COLORS[i % COLORS.length];
      var pts = se.points.filter(function (p) { return isFinite(p[0]) && isFinite(p[1]); });
      if (se.line && pts.length > 1)
        s += '<polyline class="line" stroke="' + c + '" points="' +
             pts.map(function (p) { return xs(p[0]).toFixed(1) + "," + ys(p[1]).toFixed(1); })
                .join(" ") + '"/>';
      var r = se.r || (pts.length > 500 ? 1.6 : 3);
      pts.forEach(function (p) {
        var w = p[3];
        if (!w || !isFinite(w[0]) || !isFinite(w[1])) return;
        var cx = xs(p[0]).toFixed(1), y0 = ys(w[0]).toFixed(1), y1 = ys(w[1]).toFixed(1);
        s += '<path class="whisker" stroke="' + c + '" d="M' + cx + "," + y0 + "V" + y1 + "M" +
             (cx - 3) + "," + y0 + "h6M" + (cx - 3) + "," + y1 + 'h6"/>';
      });
      if (se.dots === false) return;
      pts.forEach(function (p) {
        s += '<circle class="pt" cx="' + xs(p[0]).toFixed(1) + '" cy="' + ys(p[1]).toFixed(1) +
             '" r="' + r + '" fill="' + c + '"><title>' +
             esc(p[2] !== undefined ? p[2] : fmt(p[0]) + ", " + fmt(p[1])) + "</title></circle>";
      });
    });
    s += legend(o.series, W, m);
    return '<svg class="chart" data-chart="' + esc(o.id || "") + '" viewBox="0 0 ' + W + " " + H +
           '" width="' + W + '" height="' + H + '">' + s + "</svg>";
  }

  /* The same chart on a log10 y axis: values that are not > 0 are left out, ticks and the
   * lines' labels read in the original units (the points' titles are the caller's). */
  function logY(o) {
    function lg(v) { return v > 0 ? Math.log10(v) : NaN; }
    var c = {};
    Object.keys(o).forEach(function (k) { c[k] = o[k]; });
    c.ylog = false;
    c.yfmt = function (t) { return fmt(Math.pow(10, t)); };
    c.series = o.series.map(function (se) {
      var n = {};
      Object.keys(se).forEach(function (k) { n[k] = se[k]; });
      n.points = se.points.map(function (p) {
        var title = p[2] !== undefined ? p[2] : fmt(p[0]) + ", " + fmt(p[1]);
        return [p[0], lg(p[1]), title, p[3] ? [lg(p[3][0]), lg(p[3][1])] : undefined];
      });
      return n;
    });
    c.hlines = (o.hlines || []).map(function (h) {
      return {y: lg(h.y), label: h.label, soft: h.soft, value: h.y};
    });
    return c;
  }

  /* Grouped bars with optional [lo, hi] whiskers. o: {id, groups: [names], series: [{name, color,
   * values: [..], lo: [..], hi: [..]}], ylabel, w, h}. */
  function bars(o) {
    var W = o.w || Math.max(420, 40 + o.groups.length * 26 * o.series.length), H = o.h || 260;
    var m = {l: 56, r: 12, t: 20, b: 70};
    var vals = [0];
    o.series.forEach(function (se) {
      vals = vals.concat(se.values, se.hi || []);
    });
    if (!o.groups.length) return empty(o, W, H, o.empty || "no data yet");
    var yd = [0, extent(vals, 0.1)[1]];
    var gw = (W - m.l - m.r) / o.groups.length, bw = gw * 0.8 / o.series.length;
    var xs = function (g) { return m.l + g * gw + gw * 0.1; };
    var ys = function (v) { return H - m.b - (v - yd[0]) / (yd[1] - yd[0]) * (H - m.t - m.b); };
    var s = '<rect x="' + m.l + '" y="' + m.t + '" width="' + (W - m.l - m.r) + '" height="' +
            (H - m.t - m.b) + '" class="bg"/>';
    ticks(yd[0], yd[1], 4).forEach(function (t) {
      s += '<line class="grid" x1="' + m.l + '" x2="' + (W - m.r) + '" y1="' + ys(t) + '" y2="' +
           ys(t) + '"/><text class="tick" x="' + (m.l - 4) + '" y="' + (ys(t) + 4) +
           '" text-anchor="end">' + fmt(t) + "</text>";
    });
    o.groups.forEach(function (g, gi) {
      var x = xs(gi) + gw * 0.4;
      var label = g.length > 18 ? g.slice(0, 8) + "…" + g.slice(-9) : g;
      s += '<text class="tick" transform="translate(' + x + "," + (H - m.b + 10) +
           ') rotate(30)" text-anchor="start"><title>' + esc(g) + "</title>" + esc(label) +
           "</text>";
    });
    o.series.forEach(function (se, si) {
      var c = se.color || COLORS[si % COLORS.length];
      se.values.forEach(function (v, gi) {
        if (!isFinite(v)) return;
        var x = xs(gi) + si * bw, y = ys(v);
        var tip = o.groups[gi] + " " + se.name + ": " + fmt(v);
        if (se.lo && se.hi && isFinite(se.lo[gi]) && isFinite(se.hi[gi]))
          tip += " (range " + fmt(se.lo[gi]) + "–" + fmt(se.hi[gi]) + ")";
        s += '<rect class="pt" x="' + x.toFixed(1) + '" y="' + y.toFixed(1) + '" width="' +
             (bw - 1).toFixed(1) + '" height="' + (H - m.b - y).toFixed(1) + '" fill="' + c +
             '"><title>' + esc(tip) + "</title></rect>";
        if (se.lo && se.hi && isFinite(se.lo[gi]) && isFinite(se.hi[gi])) {
          var cx = x + bw / 2;
          s += '<path class="whisker" d="M' + cx + "," + ys(se.lo[gi]) + "V" + ys(se.hi[gi]) +
               "M" + (cx - 3) + "," + ys(se.lo[gi]) + "h6M" + (cx - 3) + "," + ys(se.hi[gi]) +
               'h6"/>';
        }
      });
    });
    if (o.ylabel)
      s += '<text class="label" transform="translate(12,' + ((m.t + H - m.b) / 2) +
           ') rotate(-90)" text-anchor="middle">' + esc(o.ylabel) + "</text>";
    s += legend(o.series, W, m);
    return '<svg class="chart" data-chart="' + esc(o.id || "") + '" viewBox="0 0 ' + W + " " + H +
           '" width="' + W + '" height="' + H + '">' + s + "</svg>";
  }

  return {xy: xy, bars: bars, esc: esc, fmt: fmt, ticks: ticks, COLORS: COLORS};
})();
