/* app.js: the page of the live dashboard and of the one-file report (docs/dashboard.md).
 *
 * The report carries its data in <script id="regmix-data" type="application/json">; the live
 * dashboard has none and polls the coordinator's /api/ endpoints every POLL_MS instead, fetching
 * only the results it has not seen (a cursor), and renders the same views from the same model:
 *   model = {sweeps: [summary], doc: /api/sweeps/ID, results: [row], runs: /api/.../runs page,
 *            workers: [worker] | null}. */
"use strict";
(function () {
  var POLL_MS = 2000, PAGE = 500, MAX_PAGES_PER_POLL = 20, MAX_PLOT = 4000, RUNS_PAGE = 25;
  var MAX_KEEP = 50000; /* results the live page holds; beyond, it stops fetching them */
  var esc = Plot.esc, fmt = Plot.fmt;
  var m = /[?&]poll=(\d+)/.exec(location.search); /* ?poll=MS: faster polling (the tests) */
  if (m) POLL_MS = Math.max(250, +m[1]);
  var dataEl = document.getElementById("regmix-data");
  var report = dataEl ? JSON.parse(dataEl.textContent) : null;
  var model = {sweeps: [], doc: null, results: [], runs: null, workers: null};
  var live = {sel: null, cursor: 0, runsOffset: 0, tablePage: 0, polls: 0, error: ""};

  function $(id) { return document.getElementById(id); }

  function ago(ms) {
    if (!ms) return "–";
    var s = Math.round((Date.now() - ms) / 1000);
    return s < 120 ? s + " s ago" : s < 7200 ? Math.round(s / 60) + " min ago" :
           Math.round(s / 3600) + " h ago";
  }

  function dur(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    s = Math.round(s);
    return s < 120 ? s + " s" : s < 7200 ? Math.round(s / 60) + " min" :
           (s / 3600).toFixed(1) + " h";
  }

  var STATES = ["queued", "leased", "running", "done", "failed", "dead", "cancelled"];
  var STATE_COLORS = {queued: "#c7c7c7", leased: "#aec7e8", running: "#1f77b4", done: "#2ca02c",
                      failed: "#ff7f0e", dead: "#d62728", cancelled: "#7f7f7f"};

  function progressBar(runs) {
    var total = 0, s = "";
    STATES.forEach(function (k) { total += runs[k] || 0; });
    if (!total) return "";
    STATES.forEach(function (k) {
      var n = runs[k] || 0;
      if (n) s += '<span style="width:' + (100 * n / total) + "%;background:" + STATE_COLORS[k] +
                  '" title="' + k + ": " + n + '"></span>';
    });
    return '<div class="bar">' + s + "</div>";
  }

  function countsText(runs) {
    return STATES.filter(function (k) { return runs[k]; })
        .map(function (k) { return k + " " + runs[k]; }).join(", ");
  }

  function sweepsTable() {
    if (report) return "";
    var rows = model.sweeps.map(function (s) {
      var sel = s.sweep_id === live.sel ? ' class="sel"' : "";
      return "<tr" + sel + ' data-sweep="' + esc(s.sweep_id) + '"><td><a href="#' +
             esc(s.sweep_id) + '">' + esc(s.sweep_id) + "</a></td><td>" + esc(s.name) +
             "</td><td>" + esc(s.state) + "</td><td>" + progressBar(s.runs) + "</td><td>" +
             (s.runs.done || 0) + " / " + s.runs.total + "</td><td>" + fmt(s.rate_per_s) +
             "</td><td>" + dur(s.eta_s) + "</td><td>" + s.fits + "</td></tr>";
    }).join("");
    return "<h2>Sweeps</h2><table id=\"sweeps\"><tr><th>sweep</th><th>name</th><th>state</th>" +
           "<th>runs by state</th><th>done</th><th>runs/s</th><th>time left</th><th>fits</th>" +
           "</tr>" + (rows || '<tr><td colspan="8">no sweeps yet</td></tr>') + "</table>";
  }

  /* Evenly thinned copy of a list, at most n long (the charts stay fast on big sweeps). */
  function thin(list, n) {
    if (list.length <= n) return list;
    var out = [], step = list.length / n;
    for (var i = 0; i < n; i++) out.push(list[Math.floor(i * step)]);
    return out;
  }

  /* The loss a result has for domain `name`: its own column, else the sweep's single loss
   * (synthetic sweeps report one loss, not one per domain). */
  function domainLoss(r, name) {
    if (r.loss && typeof r.loss[name] === "number") return r.loss[name];
    var keys = r.loss ? Object.keys(r.loss) : [];
    return keys.length === 1 ? r.loss[keys[0]] : NaN;
  }

  function charts() {
    var doc = model.doc, d = doc.domains, fits = doc.fits || [], last = fits[fits.length - 1];
    var names = d.map(function (x) { return x.name; });
    var offline = doc.kind === "fit"; /* regmixctl fit --report: one fit, no sweep over time */
    var out = "";
    // 1. fit quality over the runs
    if (!offline) out += '<div class="card"><h3>Fit quality against runs</h3>' + Plot.xy({
      id: "fit-quality", xlabel: "runs used", ylabel: "out-of-fold Spearman",
      empty: "no fit yet",
      series: [{name: "CV Spearman", line: true, points: fits.map(function (f) {
        return [f.runs_used, f.spearman, "fit " + f.fit_no + ": " + f.runs_used + " runs, " +
                "Spearman " + fmt(f.spearman) + ", " + f.verdict];
      })}]
    }) + "</div>";
    if (!offline) out += '<div class="card"><h3>Proposal movement per refit</h3>' + Plot.xy({
      id: "fit-moved", xlabel: "runs used", ylabel: "L1 from the previous proposal",
      empty: "needs two fits",
      series: [{name: "L1 moved", line: true, color: "#9467bd",
                points: fits.filter(function (f) { return f.l1_moved !== null; })
                    .map(function (f) {
                      return [f.runs_used, f.l1_moved, "fit " + f.fit_no + ": moved " +
                              fmt(f.l1_moved)];
                    })}],
      hlines: doc.l1_tol ? [{y: doc.l1_tol, label: "l1_tol"}] : []
    }) + "</div>";
    // The prediction at the proposal per refit with the 95 % interval of one run there, the
    // target's realised objective once it is done, and for active sweeps the expected gain.
    if (!offline) {
      var tgt = (doc.targets || []).filter(function (t) {
        return t.role === "target" && t.state === "done" && isFinite(t.objective) &&
               t.objective !== null;
      })[0];
      out += '<div class="card"><h3>Predicted objective at the proposal per refit</h3>' +
             Plot.xy({
               id: "predicted", xlabel: "runs used", ylabel: "predicted " +
               (doc.objective || "objective"), empty: "no fit yet",
               series: [{name: "prediction, whiskers: 95 % interval", line: true,
                         color: "#2ca02c", points: fits.filter(function (f) {
                           return f.predicted !== null;
                         }).map(function (f) {
                           var iv = interval(f);
                           return [f.runs_used, f.predicted, "fit " + f.fit_no + ": predicted " +
                                   fmt(f.predicted) + (iv ? ", 95 % interval " + fmt(iv[0]) +
                                   " to " + fmt(iv[1]) : ", no interval") +
                                   (f.verdict ? ", " + f.verdict : ""), iv];
                         })}],
               hlines: tgt ? [{y: tgt.objective, label: "target (realised)", soft: true}] : []
             }) + '<p class="note">Whiskers: where one run at the proposal should land, 95 % ' +
             "(the prediction ± 1.96 × its error on runs the model did not see, or the " +
             "model's and the runs' noise for active proposals)." +
             (tgt ? " The line: the target run's objective (at the edge, with an arrow, " +
                    "when it is far off the predictions)." : "") + "</p></div>";
      var gains = fits.filter(function (f) {
        return f.expected_gain !== null && f.expected_gain !== undefined && isFinite(f.expected_gain);
      });
      if (gains.length)
        out += '<div class="card"><h3>Expected gain of one more run per refit</h3>' + Plot.xy({
          id: "gain", xlabel: "runs used", ylabel: "expected gain (log scale)", ylog: true,
          series: [{name: "expected gain", line: true, color: "#ff7f0e",
                    points: gains.map(function (f) {
                      return [f.runs_used, f.expected_gain, "fit " + f.fit_no +
                              ": expected gain " + fmt(f.expected_gain)];
                    })}],
          hlines: isFinite(doc.gain_tol) && doc.gain_tol !== null ?
                  [{y: doc.gain_tol, label: "gain_tol"}] : []
        }) + "</div>";
    }
    // 2. predicted against actual, out of fold, for the latest fit
    var oof = doc.oof, pts = [];
    if (oof)
      for (var i = 0; i < oof.actual.length; i++)
        pts.push([oof.actual[i], oof.predicted[i], (oof.runs ? "run " + oof.runs[i] + ": " : "") +
                  "actual " + fmt(oof.actual[i]) + ", predicted " + fmt(oof.predicted[i])]);
    out += '<div class="card"><h3>Predicted against actual' +
           (oof ? " (" + esc(oof.label || "out of fold, fit " + oof.fit_no) + ")" : "") +
           "</h3>" + Plot.xy({
             id: "oof", xlabel: "actual " + (doc.objective || "objective"), ylabel: "predicted",
             diagonal: true, empty: "no fit yet", series: [{name: "", points: pts}]
           }) + "</div>";
    // 3. the proposal beside the prior, with the range over the last refits
    var series = [{name: "prior", color: "#999",
                   values: d.map(function (x) { return x.prior; })}];
    if (last && last.proposal) {
      var recent = fits.slice(-5), lo = [], hi = [];
      names.forEach(function (n, j) {
        var v = recent.map(function (f) { return f.proposal[j]; });
        lo.push(Math.min.apply(null, v));
        hi.push(Math.max.apply(null, v));
      });
      series.push({name: "proposal (fit " + last.fit_no + ")", color: "#1f77b4",
                   values: last.proposal, lo: recent.length > 1 ? lo : null,
                   hi: recent.length > 1 ? hi : null});
    }
    out += '<div class="card"><h3>Proposal against ' + (offline ? "the prior used" : "prior") +
           (last && fits.length > 1 ? " (whiskers: range over the last " +
            Math.min(5, fits.length) + " refits)" : "") + "</h3>" +
           Plot.bars({id: "proposal", groups: names, series: series, ylabel: "weight"}) + "</div>";
    // 4. target and baseline runs' loss curves
    var ts = (doc.targets || []).filter(function (t) { return t.curve && t.curve.length; });
    if (!offline) out += '<div class="card"><h3>Target and baseline loss curves</h3>' + Plot.xy({
      id: "targets", xlabel: "step", ylabel: "training loss", empty: "no target run yet",
      series: ts.map(function (t, k) {
        return {name: t.role + " (" + t.state + ")", line: true, r: 2,
                color: t.role === "target" ? "#1f77b4" : "#999",
                points: t.curve.map(function (p) {
                  return [p[0], p[1], t.role + " step " + p[0] + ": " + fmt(p[1])];
                })};
      })
    }) + "</div>";
    return '<div class="grid">' + out + "</div>";
  }

  /* A fit's [lo, hi] when both ends are numbers, else null (absent on older fits). */
  function interval(f) {
    var iv = f && f.predicted_interval;
    return iv && iv.length === 2 && iv[0] !== null && iv[1] !== null && isFinite(iv[0]) &&
           isFinite(iv[1]) ? iv : null;
  }

  /* The latest proposal in words: its prediction, the interval, the verdict, the gain. */
  function proposalText(f, doc) {
    if (!f) return "";
    var iv = interval(f), s = "proposal of fit " + f.fit_no + ": predicted " + fmt(f.predicted);
    if (iv) s += ", a run there lands in " + fmt(iv[0]) + " to " + fmt(iv[1]) + " (95 %)";
    if (f.verdict) s += " · verdict " + esc(f.verdict);
    if (f.expected_gain !== null && f.expected_gain !== undefined && isFinite(f.expected_gain))
      s += " · expected gain of one more run " + fmt(f.expected_gain) +
           (doc.gain_tol !== null && isFinite(doc.gain_tol) ? " (gain_tol " + fmt(doc.gain_tol) +
            ")" : "");
    if (f.proposal_from) s += " · chosen by " + esc(f.proposal_from);
    return s;
  }

  function domainCharts() {
    var doc = model.doc, rs = thin(model.results, MAX_PLOT), out = "";
    doc.domains.forEach(function (dm, j) {
      out += '<div class="card small"><h3>' + esc(dm.name) + "</h3>" + Plot.xy({
        id: "domain-" + j, w: 300, h: 200, xlabel: "weight of " + dm.name, ylabel: "loss",
        empty: "no results yet",
        series: [{name: "", color: Plot.COLORS[j % 10], points: rs.map(function (r) {
          var y = domainLoss(r, dm.name);
          return [r.w[j], y, "run " + r.idx + ": weight " + fmt(r.w[j]) + ", loss " + fmt(y)];
        })}]
      }) + "</div>";
    });
    var note = model.results.length > MAX_PLOT ?
        " (" + MAX_PLOT + " of " + model.results.length + " shown, evenly thinned)" : "";
    if (!report && model.results.length >= MAX_KEEP)
      note += " (the page keeps the first " + MAX_KEEP + " results; the report has them all)";
    return "<h2>" + (doc.kind === "fit" ? "The target against each domain's weight" :
                     "Each domain's proxy loss against its weight") + note + '</h2><div class="grid">' +
           out + "</div>";
  }

  function fitsTable() {
    var fits = model.doc.fits || [];
    if (!fits.length) return "";
    var gain = fits.some(function (f) {
      return f.expected_gain !== null && f.expected_gain !== undefined;
    });
    var rows = fits.slice(-20).reverse().map(function (f) {
      var iv = interval(f);
      return "<tr><td>" + f.fit_no + "</td><td>" + f.runs_used + "</td><td>" + esc(f.model) +
             "</td><td>" + fmt(f.spearman) + "</td><td>" + fmt(f.r2) + "</td><td>" +
             fmt(f.l1_moved) + "</td><td>" + fmt(f.predicted) + "</td><td>" +
             (iv ? fmt(iv[0]) + " to " + fmt(iv[1]) : "–") + "</td>" +
             (gain ? "<td>" + fmt(f.expected_gain) + "</td>" : "") + "<td>" + esc(f.verdict) +
             "</td></tr>";
    }).join("");
    return '<h2>Fits</h2><table id="fits"><tr><th>fit</th><th>runs</th><th>model</th>' +
           "<th>Spearman</th><th>R²</th><th>L1 moved</th><th>predicted</th>" +
           "<th>95 % interval of a run</th>" + (gain ? "<th>expected gain</th>" : "") +
           "<th>verdict</th></tr>" + rows + "</table>" +
           (fits.length > 20 ? "<p>latest 20 of " + fits.length + "</p>" : "");
  }

  function targetsTable() {
    var ts = model.doc.targets || [];
    if (!ts.length) return "";
    /* The proxy regression's prediction of the objective at the proposal (latest fit), beside
     * what the target run measured: the question the sweep exists to answer. */
    var fits = model.doc.fits || [], last = fits[fits.length - 1];
    return '<h2>Target runs</h2><table id="target-table"><tr><th>role</th><th>state</th>' +
           "<th>launcher</th><th>step</th><th>last loss</th><th>objective</th>" +
           "<th>proxy prediction (fit " + (last ? last.fit_no : "–") + ")</th></tr>" +
           ts.map(function (t) {
             return "<tr><td>" + esc(t.role) + "</td><td>" + esc(t.state) + "</td><td>" +
                    esc(t.launcher) + "</td><td>" + t.step + "</td><td>" + fmt(t.loss) +
                    "</td><td>" + fmt(t.objective) + "</td><td>" +
                    (t.role === "target" && last ? fmt(last.predicted) + (interval(last) ?
                     " (95 % " + fmt(interval(last)[0]) + " to " + fmt(interval(last)[1]) + ")" :
                     "") : "–") + "</td></tr>";
           }).join("") + "</table>" +
           '<p class="facts">The objective is measured on the target model; the prediction is ' +
           "the proxy regression's at the proposed mixture, on the proxy models' scale.</p>";
  }

  /* The runs table: live, a server page of every run with its state; in the report, the done
   * runs' results, paged here. */
  function runsTable() {
    var names = model.doc.domains.map(function (x) { return x.name; }), rows = "", nav = "";
    if (model.runs) {
      var r = model.runs;
      rows = r.runs.map(function (x) {
        return '<tr class="run"><td>' + x.idx + "</td><td>" + esc(x.state) + "</td><td>" +
               x.attempts + "</td><td>" + esc(x.worker || "") + "</td><td>" +
               x.w.map(fmt).join(" ") + "</td><td>" + (x.loss ? esc(lossText(x.loss)) : "") +
               "</td></tr>";
      }).join("");
      nav = '<p class="nav"><button id="runs-prev"' + (r.offset > 0 ? "" : " disabled") +
            ">prev</button> runs " + (r.total ? r.offset + 1 : 0) + "–" +
            (r.offset + r.runs.length) + " of " + r.total + ' <button id="runs-next"' +
            (r.offset + r.runs.length < r.total ? "" : " disabled") + ">next</button></p>";
    } else {
      var all = model.results, p = live.tablePage;
      rows = all.slice(p * RUNS_PAGE, (p + 1) * RUNS_PAGE).map(function (x) {
        return '<tr class="run"><td>' + x.idx + "</td><td>done</td><td>" + x.attempt +
               "</td><td>" + esc(x.worker) + "</td><td>" + x.w.map(fmt).join(" ") +
               "</td><td>" + esc(lossText(x.loss)) + "</td></tr>";
      }).join("");
      nav = '<p class="nav"><button id="runs-prev"' + (p > 0 ? "" : " disabled") +
            ">prev</button> results " + (all.length ? p * RUNS_PAGE + 1 : 0) + "–" +
            Math.min(all.length, (p + 1) * RUNS_PAGE) + " of " + all.length +
            ' <button id="runs-next"' + ((p + 1) * RUNS_PAGE < all.length ? "" : " disabled") +
            ">next</button></p>";
    }
    return '<h2>Runs</h2><table id="runs"><tr><th>run</th><th>state</th><th>attempts</th>' +
           "<th>worker</th><th>weights (" + esc(names.join(" ")) + ")</th><th>losses</th></tr>" +
           rows + "</table>" + nav;
  }

  function lossText(l) {
    return Object.keys(l).map(function (k) { return k + "=" + fmt(l[k]); }).join(" ");
  }

  function workersTable() {
    if (!model.workers) return "";
    var rows = model.workers.map(function (w) {
      return '<tr class="worker"><td>' + esc(w.worker_id) + "</td><td>" + esc(w.host) +
             "</td><td>" + esc(w.state) + "</td><td>" + w.running.length + " / " + w.slots +
             "</td><td>" + w.running.map(function (a) {
               return esc(a.sweep_id) + " run " + a.run;
             }).join(", ") + "</td><td>" + w.done + "</td><td>" + w.failed + "</td><td>" +
             ago(w.last_seen_ms) + "</td></tr>";
    }).join("");
    return '<h2>Workers</h2><table id="workers"><tr><th>worker</th><th>host</th><th>state</th>' +
           "<th>busy</th><th>running</th><th>done</th><th>failed</th><th>last seen</th></tr>" +
           (rows || '<tr><td colspan="8">no workers</td></tr>') + "</table>";
  }

  function render() {
    var head = "", body = "";
    if (report) {
      head = "regmix report · generated " + new Date(report.generated_ms).toISOString();
    } else {
      head = "regmix dashboard · " + (live.error ? "error: " + esc(live.error) :
             "updated " + new Date().toLocaleTimeString()) + " · polling every " +
             POLL_MS / 1000 + " s";
    }
    body += sweepsTable();
    var doc = model.doc;
    if (doc) {
      var s = doc.sweep;
      body += '<h2 id="sweep-title">' + esc(s.sweep_id) + " · " + esc(s.name) + " · " +
              esc(s.state) + "</h2>";
      if (doc.kind === "fit") {
        var f = doc.fits[0];
        body += '<p class="facts">' + s.runs.total + " training runs · target " +
                esc(doc.objective) + " · model " + esc(f.model) + " · Spearman " +
                fmt(f.spearman) + " · R² " + fmt(f.r2) + " · predicted at the proposal " +
                fmt(f.predicted) + (interval(f) ? ", a run there lands in " +
                fmt(interval(f)[0]) + " to " + fmt(interval(f)[1]) + " (95 %)" : "") + "</p>";
      } else {
        body += progressBar(s.runs) + '<p class="facts">' + countsText(s.runs) + " · " +
                s.runs.total + " runs · " + fmt(s.rate_per_s) + " runs/s · time left " +
                dur(s.eta_s) + " · objective " + esc(doc.objective || "?") +
                (s.converged ? " · converged after " + s.converged_after_runs + " runs" : "") +
                "</p>";
        var lastFit = (doc.fits || [])[(doc.fits || []).length - 1];
        if (lastFit) body += '<p class="facts" id="proposal-line">' + proposalText(lastFit, doc) +
                             "</p>";
      }
      body += charts() + domainCharts() + workersTable() + fitsTable() + targetsTable() +
              runsTable();
    } else {
      body += report ? "<p>no sweep in this report</p>" : workersTable();
    }
    $("head").innerHTML = head;
    $("main").innerHTML = body;
    var prev = $("runs-prev"), next = $("runs-next");
    if (prev) prev.onclick = function () { page(-1); };
    if (next) next.onclick = function () { page(1); };
    document.body.setAttribute("data-results", String(model.results.length));
    document.body.setAttribute("data-fits", String(doc && doc.fits ? doc.fits.length : 0));
    document.body.setAttribute("data-rendered", String(++live.polls));
  }

  function page(dir) {
    if (model.runs) {
      live.runsOffset = Math.max(0, live.runsOffset + dir * RUNS_PAGE);
      poll(true);
    } else {
      live.tablePage = Math.max(0, live.tablePage + dir);
      render();
    }
  }

  function get(path) {
    return fetch(path, {cache: "no-store"}).then(function (r) {
      if (!r.ok) throw new Error(path + ": HTTP " + r.status);
      return r.json();
    });
  }

  var timer = null, busy = false;
  function poll(once) {
    if (busy) return;
    busy = true;
    get("api/sweeps").then(function (s) {
      model.sweeps = s.sweeps;
      var want = location.hash.replace("#", "");
      var ids = s.sweeps.map(function (x) { return x.sweep_id; });
      var sel = ids.indexOf(want) >= 0 ? want : live.sel && ids.indexOf(live.sel) >= 0 ?
                live.sel : null;
      if (!sel) {
        var running = s.sweeps.filter(function (x) { return x.state === "running"; });
        sel = running.length ? running[running.length - 1].sweep_id :
              ids.length ? ids[ids.length - 1] : null;
      }
      if (sel !== live.sel) {
        live.sel = sel;
        live.cursor = 0;
        live.runsOffset = 0;
        model.results = [];
        model.doc = null;
      }
      if (!sel) return null;
      var base = "api/sweeps/" + encodeURIComponent(sel);
      return get(base).then(function (doc) {
        model.doc = doc;
        var pages = 0;
        function more() {
          return get(base + "/results?after=" + live.cursor + "&limit=" + PAGE).then(function (r) {
            model.results = model.results.concat(r.results);
            if (r.next !== null) live.cursor = r.next;
            if (r.more && ++pages < MAX_PAGES_PER_POLL && model.results.length < MAX_KEEP)
              return more();
          });
        }
        return more();
      }).then(function () {
        return get(base + "/runs?offset=" + live.runsOffset + "&limit=" + RUNS_PAGE);
      }).then(function (r) { model.runs = r; });
    }).then(function () {
      return get("api/workers");
    }).then(function (w) {
      model.workers = w.workers;
      live.error = "";
    }).catch(function (e) {
      live.error = e.message;
    }).then(function () {
      busy = false;
      render();
      if (!once) timer = setTimeout(poll, POLL_MS);
    });
  }

  if (report) {
    model.doc = report.doc;
    model.results = report.results || [];
    render();
  } else {
    window.addEventListener("hashchange", function () {
      clearTimeout(timer);
      poll();
    });
    poll();
  }
})();
