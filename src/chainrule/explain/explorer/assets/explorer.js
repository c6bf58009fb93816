/* chainrule backward-pass explorer.
 *
 * Reads one JSON payload (#cr-data: {explanations: [{heading, model, ops, latex_names,
 * worksheets}], embedded}) where `model` is Explanation.to_dict() (schema "chainrule.explain",
 * version 1, docs/explain_schema.md), and draws: the graph laid out left to right (a small
 * layered layout: longest-path ranks, leaves beside their first consumer, barycentre ordering),
 * the steps (forward node by node, the seed, backward edge by edge in backward_order, the
 * updates), a parameter's chain-rule product and paths, the layer view, worksheets and the
 * whole derivation typeset with KaTeX. No network, no storage: everything is in this file.
 *
 * Every number the step panel shows is an element .num with data-role (what it is) and
 * data-v (the exact value from the model, as JSON), so a test can compare what is shown with
 * to_dict(). window.chainruleExplorer exposes the state for tests and the notebook widget.
 */
(function () {
  "use strict";

  var PAYLOAD = JSON.parse(document.getElementById("cr-data").textContent);
  var app = document.getElementById("app");
  var SVGNS = "http://www.w3.org/2000/svg";
  var NODE_W = 124, NODE_H = 50, CONST_W = 44, CONST_H = 22, COL_GAP = 50, ROW_GAP = 16;
  var MARGIN = 24, AUTO_COLLAPSE = 80;

  var S = {ix: 0, tab: "graph", step: -1, playing: null, collapse: null, focus: null,
           selected: null, inspect: null, hide: null, zoom: 1, hoverPath: null};
  var E = null;        // the prepared explanation being shown
  var UI = {};         // elements that are updated in place

  // ------------------------------------------------------------------ small helpers
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k) || attrs[k] == null) continue;
        if (k === "class") el.className = attrs[k];
        else if (k === "text") el.textContent = attrs[k];
        else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), attrs[k]);
        else el.setAttribute(k, attrs[k]);
      }
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      if (c == null || c === false) continue;
      if (Array.isArray(c)) { c.forEach(function (x) { add(el, x); }); continue; }
      el.appendChild(typeof c === "string" || typeof c === "number" ?
                     document.createTextNode(String(c)) : c);
    }
  }
  function s(tag, attrs) {
    var el = document.createElementNS(SVGNS, tag);
    for (var k in attrs || {}) if (attrs[k] != null) el.setAttribute(k, attrs[k]);
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

  function toNum(x) {
    if (typeof x === "number") return x;
    if (x === "nan") return NaN;
    if (x === "inf") return Infinity;
    if (x === "-inf") return -Infinity;
    return Number(x);
  }
  function isArr(v) { return Array.isArray(v); }
  function flat(v, out) {
    out = out || [];
    if (isArr(v)) v.forEach(function (x) { flat(x, out); });
    else out.push(toNum(v));
    return out;
  }
  function shapeOf(v) {
    var sh = [];
    while (isArr(v)) { sh.push(v.length); v = v[0]; }
    return sh;
  }
  function mapVal(v, f) { return isArr(v) ? v.map(function (x) { return mapVal(x, f); }) : f(toNum(v)); }
  function zip2(a, b, f) {
    if (isArr(a) && isArr(b)) return a.map(function (x, i) { return zip2(x, b[i], f); });
    return f(toNum(a), toNum(b));
  }
  function roundTo(x, d) {
    if (d == null || !isFinite(x)) return x;
    var p = Math.pow(10, d);
    return Math.round(x * p) / p;
  }
  function fmtNum(x, digits) {
    x = toNum(x);
    if (x === 0) return "0";
    if (isNaN(x)) return "nan";
    if (!isFinite(x)) return x > 0 ? "inf" : "-inf";
    var t = Number(x.toPrecision(digits || 10));
    var a = Math.abs(t);
    if (a !== 0 && (a < 1e-4 || a >= 1e16)) {
      var e = t.toExponential().split("e");
      return e[0] + "e" + Number(e[1]);
    }
    return String(t);
  }
  function size(v) { return flat(v).length; }
  function fmtVal(v, digits, full) {
    digits = digits || 10;
    if (!isArr(v)) return fmtNum(v, digits);
    var d = Math.min(digits, 6), n = size(v);
    if (full || n <= 12) return nested(v, d);
    var f = flat(v), mean = 0, lo = Infinity, hi = -Infinity;
    f.forEach(function (x) { mean += x; lo = Math.min(lo, x); hi = Math.max(hi, x); });
    mean /= f.length;
    return "tensor(" + shapeOf(v).join(", ") + ") mean " + fmtNum(mean, 4) + ", range [" +
      fmtNum(lo, 4) + ", " + fmtNum(hi, 4) + "], first [" +
      f.slice(0, 4).map(function (x) { return fmtNum(x, 4); }).join(", ") + ", …]";
  }
  function nested(v, d) {
    return isArr(v) ? "[" + v.map(function (x) { return nested(x, d); }).join(", ") + "]" : fmtNum(v, d);
  }
  // A value in a graph node: a number, a short vector, or a tensor's shape and norm.
  function shortVal(v, bare) {
    if (!isArr(v)) return fmtNum(v, 4);
    var n = size(v);
    if (n <= 2) return nested(v, 3);
    var norm = "‖" + fmtNum(Math.sqrt(flat(v).reduce(function (a, x) { return a + x * x; }, 0)), 3) + "‖";
    return bare ? norm : "(" + shapeOf(v).join("×") + ") " + norm;
  }
  function trunc(t, n) { return t.length > n ? t.slice(0, n - 1) + "…" : t; }

  function tex(latex, display) {
    var el = h("span", {class: display ? "tex tex-display" : "tex"});
    if (latex == null) return el;
    try {
      window.katex.render(latex, el, {throwOnError: false, output: "html", strict: "ignore",
                                      displayMode: !!display, trust: false});
    } catch (err) {
      el.textContent = latex;
      el.className += " tex-failed";
    }
    return el;
  }

  // A number shown to the learner, with its exact value for tests and for "show all".
  function numEl(role, v, opts) {
    opts = opts || {};
    var shown = v == null ? "—" : fmtVal(opts.round != null ? mapVal(v, function (x) { return roundTo(x, opts.round); }) : v,
                                         E ? E.digits : 10);
    var el = h("span", {class: "num" + (opts.cls ? " " + opts.cls : ""), "data-role": role,
                        "data-v": JSON.stringify(v == null ? null : v), title: opts.title || null},
               shown);
    if (opts.param != null) el.setAttribute("data-param", opts.param);
    if (v != null && isArr(v) && size(v) > 12) {
      var wrap = h("span", {class: "numwrap"}, el, " ",
                   h("button", {class: "link", type: "button", text: "show all",
                                onclick: function () { showTable(opts.title || role, v); }}));
      return wrap;
    }
    return el;
  }

  // ------------------------------------------------------------------ preparing a model
  function prepare(d) {
    var m = d.model, P = {d: d, m: m};
    P.digits = m.settings.digits || 10;
    P.gd = m.settings.grad_decimals;
    P.byId = {};
    m.nodes.forEach(function (n) { P.byId[n.id] = n; });
    P.edges = m.edges.map(function (e, k) { return Object.assign({k: k}, e); });
    P.inE = {}; P.outE = {};
    m.nodes.forEach(function (n) { P.inE[n.id] = []; P.outE[n.id] = []; });
    P.edges.forEach(function (e) { P.inE[e.to].push(e); P.outE[e.from].push(e); });
    P.isConst = function (n) { return n.op === null && (n.role === "constant" || n.role === "hidden"); };
    P.label = function (id) {
      var n = P.byId[id];
      if (n.name) return n.name;
      if (P.isConst(n)) return isArr(n.value) ? "const" : fmtNum(n.value, 4);
      return "#" + n.id;
    };
    P.latex = function (id) {
      var n = P.byId[id];
      if (d.latex_names && d.latex_names[String(id)]) return d.latex_names[String(id)];
      if (P.isConst(n) && !isArr(n.value)) return fmtNum(n.value, 4);
      return "\\#" + id;
    };
    P.lossId = m.loss.node;
    P.lossName = P.label(P.lossId);
    P.lossLatex = P.latex(P.lossId);

    // forward lines and local-derivative rows, by node
    P.fwdLine = {};
    m.forward.forEach(function (ln) { (ln.nodes || []).forEach(function (id) { if (!(id in P.fwdLine)) P.fwdLine[id] = ln; }); });
    P.row = {};
    m.steps.forEach(function (r) { P.row[r.output] = r; });

    // the steps
    var steps = [];
    m.nodes.forEach(function (n) { if (!P.isConst(n)) steps.push({kind: "forward", node: n.id}); });
    P.nForward = steps.length;
    steps.forEach(function (st, i) { st.fi = i; });
    P.fwdIndex = {};
    steps.forEach(function (st, i) { P.fwdIndex[st.node] = i; });
    steps.push({kind: "seed", node: P.lossId});
    P.seedIndex = steps.length - 1;
    var bw = [];
    m.backward_order.forEach(function (id) {
      P.inE[id].slice().sort(function (a, b) { return a.input - b.input; }).forEach(function (e) {
        if (e.passed !== null && e.passed !== undefined) bw.push(e);
      });
    });
    P.contribs = {};     // node id -> backward edges leaving it (its contributions), in order
    bw.forEach(function (e, j) {
      steps.push({kind: "backward", edge: e, bi: j});
      (P.contribs[e.from] = P.contribs[e.from] || []).push(e);
    });
    P.nBackward = bw.length;
    P.bwStep = {};
    steps.forEach(function (st, i) { if (st.kind === "backward") P.bwStep[st.edge.k] = i; });
    m.updates.forEach(function (u, k) { steps.push({kind: "update", index: k}); });
    P.steps = steps;

    // paths from each parameter to the loss
    P.params = m.nodes.filter(function (n) { return n.role === "parameter"; }).map(function (n) { return n.id; });
    P.chainOf = {};
    m.chains.forEach(function (c) { P.chainOf[c.param] = c; });
    P.pathSumOf = {};
    m.path_sums.forEach(function (p) { P.pathSumOf[p.value] = p; });
    P.groups = makeGroups(P);
    return P;
  }

  function ancestors(P, ids) {
    var seen = {}, stack = ids.slice();
    while (stack.length) {
      var id = stack.pop();
      if (id == null || seen[id]) continue;
      seen[id] = true;
      P.byId[id].inputs.forEach(function (i) { stack.push(i); });
    }
    return seen;
  }

  // The values on a path from `param` to the loss (what the chain rule multiplies along).
  function onPath(P, param) {
    var on = {}; on[param] = true;
    P.m.nodes.forEach(function (n) {
      if (n.op !== null && n.inputs.some(function (i) { return on[i]; })) on[n.id] = true;
    });
    var back = ancestors(P, [P.lossId]), out = {};
    Object.keys(on).forEach(function (k) { if (back[k]) out[k] = true; });
    return out;
  }

  // Collapse groups: each layer (everything its W and b feed up to its output, not its input)
  // and each textbook compound (a squared error, a cross-entropy …).
  function makeGroups(P) {
    var groups = [], member = {};
    P.m.layers.slice().sort(function (a, b) { return a.index - b.index; }).forEach(function (L) {
      var top = L.a != null ? L.a : L.z;
      var before = ancestors(P, [L.x]);
      var mine = ancestors(P, [top]);
      var ids = Object.keys(mine).map(Number).filter(function (i) { return !before[i] && member[i] == null; });
      if (ids.length < 2) return;
      var g = {key: "L" + L.index, title: "Layer " + L.index, ids: ids, top: top,
               sub: [L.z, L.a].filter(function (x) { return x != null; }).map(P.label).join(", ")};
      groups.push(g);
      ids.forEach(function (i) { member[i] = g; });
    });
    var comp = {};
    P.m.nodes.forEach(function (n) {
      if (n.compound == null || member[n.id]) return;
      (comp[n.compound] = comp[n.compound] || []).push(n.id);
    });
    Object.keys(comp).forEach(function (c) {
      var ids = comp[c];
      // the constants only this compound uses
      ids.slice().forEach(function (id) {
        P.byId[id].inputs.forEach(function (i) {
          var u = P.byId[i];
          if (P.isConst(u) && member[i] == null && P.outE[i].every(function (e) { return ids.indexOf(e.to) >= 0; }) && ids.indexOf(i) < 0) ids.push(i);
        });
      });
      if (ids.length < 2) return;
      var top = Math.max.apply(null, ids);
      var row = P.row[top];
      var g = {key: "C" + c, title: row ? row.op : "compound", ids: ids, top: top, sub: P.label(top)};
      groups.push(g);
      ids.forEach(function (i) { member[i] = g; });
    });
    P.member = member;
    return groups;
  }

  // ------------------------------------------------------------------ the visible graph
  // What is drawn: nodes (or collapsed groups) after the focus filter, and the links.
  function viewOf(P) {
    var keep = null;
    if (S.focus != null) {
      var on = onPath(P, S.focus);
      keep = {};
      Object.keys(on).forEach(function (k) {
        keep[k] = true;
        P.byId[k].inputs.forEach(function (i) { keep[i] = true; });
      });
    }
    var collapse = S.collapse;
    var rep = {}, items = {}, order = [], perUse = {};
    P.m.nodes.forEach(function (n) {
      if (keep && !keep[n.id]) return;
      var g = collapse ? P.member[n.id] : null;
      if (!g && P.isConst(n) && P.outE[n.id].length > 1) {
        // a constant is drawn at each use (one shared box would pull distant values together)
        P.outE[n.id].forEach(function (e) {
          var key1 = "c:" + n.id + ":" + e.k;
          items[key1] = {key: key1, node: n, ids: [n.id], first: n.id};
          order.push(key1);
          perUse[e.k] = key1;
        });
        rep[n.id] = null;
        return;
      }
      var key = g ? "g:" + g.key : "n:" + n.id;
      rep[n.id] = key;
      if (!items[key]) {
        items[key] = g ? {key: key, group: g, ids: [], first: n.id} : {key: key, node: n, ids: [], first: n.id};
        order.push(key);
      }
      items[key].ids.push(n.id);
    });
    var links = {}, linkList = [];
    P.edges.forEach(function (e) {
      var a = perUse[e.k] || rep[e.from], b = rep[e.to];
      if (a == null || b == null || a === b) return;
      var key = a + ">" + b;
      if (!links[key]) { links[key] = {key: key, from: a, to: b, edges: []}; linkList.push(links[key]); }
      links[key].edges.push(e);
    });
    return {rep: rep, items: items, order: order, links: linkList};
  }

  // A layered layout, left to right: ranks by longest path from the sources (a source sits
  // just before its first consumer), the order in each rank by barycentre sweeps, y positions
  // pulled towards the neighbours without overlaps. An edge that skips ranks and would cross
  // a node runs on a lane above or below the drawing instead.
  function layout(V) {
    var ids = V.order, preds = {}, succs = {}, dims = {}, pos = {};
    ids.forEach(function (k, i) {
      preds[k] = []; succs[k] = []; pos[k] = i;
      var it = V.items[k];
      var small = it.node && E.isConst(it.node);
      dims[k] = small ? {w: CONST_W, h: CONST_H} : {w: NODE_W, h: NODE_H};
    });
    V.links.forEach(function (l) { succs[l.from].push(l.to); preds[l.to].push(l.from); });
    // topological order (Kahn), in forward order where free; a cycle (never expected) is cut
    var indeg = {}, topo = [], ready = [], placed = {};
    ids.forEach(function (k) { indeg[k] = preds[k].length; if (!indeg[k]) ready.push(k); });
    while (ready.length) {
      ready.sort(function (a, b) { return pos[a] - pos[b]; });
      var k0 = ready.shift();
      topo.push(k0); placed[k0] = true;
      succs[k0].forEach(function (t) { if (--indeg[t] === 0) ready.push(t); });
    }
    ids.forEach(function (k) { if (!placed[k]) topo.push(k); });
    var rank = {}, done = {};
    topo.forEach(function (k) {
      var r = 0;
      preds[k].forEach(function (p) { if (done[p]) r = Math.max(r, rank[p] + 1); });
      rank[k] = r; done[k] = true;
    });
    topo.slice().reverse().forEach(function (k) {
      if (!preds[k].length && succs[k].length) {
        rank[k] = Math.max(0, Math.min.apply(null, succs[k].map(function (t) { return rank[t]; })) - 1);
      }
    });
    var maxR = 0;
    ids.forEach(function (k) { maxR = Math.max(maxR, rank[k]); });
    var cols = [];
    for (var r0 = 0; r0 <= maxR; r0++) cols.push([]);
    topo.forEach(function (k) { cols[rank[k]].push(k); });
    // neighbours for the barycentres: only edges between adjacent ranks, or a node's only ones
    // (constants follow their consumer; they do not pull it)
    function small(t) { return dims[t].h < NODE_H; }
    function near(k, list) {
      var adj = list[k].filter(function (t) { return Math.abs(rank[t] - rank[k]) === 1; });
      if (!adj.length) adj = list[k];
      var big = adj.filter(function (t) { return !small(t); });
      return big.length ? big : adj;
    }
    var y = {};
    cols.forEach(function (col) {
      var acc = 0, prev = null;
      col.forEach(function (k) {
        if (prev != null) acc += dims[prev].h / 2 + ROW_GAP + dims[k].h / 2;
        y[k] = acc; prev = k;
      });
    });
    function place(col, want) {
      col.sort(function (a, b) { return want[a] - want[b] || pos[a] - pos[b]; });
      var prev = null, shift = 0;
      col.forEach(function (k) {
        var yy = want[k];
        if (prev != null) yy = Math.max(yy, y[prev] + dims[prev].h / 2 + ROW_GAP + dims[k].h / 2);
        y[k] = yy; prev = k;
      });
      var weight = 0;                                  // constants give way to values
      col.forEach(function (k) { var wt = small(k) ? 0.05 : 1; shift += wt * (want[k] - y[k]); weight += wt; });
      shift /= Math.max(1e-9, weight);
      col.forEach(function (k) { y[k] += shift; });   // back towards where they want to be
    }
    var sweeps = ids.length > 600 ? 4 : 10;
    for (var it = 0; it < sweeps; it++) {
      var goingDown = it % 2 === 0, rs = [];
      for (var r2 = 0; r2 <= maxR; r2++) rs.push(r2);
      if (!goingDown) rs.reverse();
      rs.forEach(function (r3) {
        var want = {};
        cols[r3].forEach(function (k) {
          var nb = goingDown ? near(k, preds) : near(k, succs);
          if (!nb.length) nb = goingDown ? near(k, succs) : near(k, preds);
          want[k] = nb.length ? nb.reduce(function (a, t) { return a + y[t]; }, 0) / nb.length : y[k];
        });
        place(cols[r3], want);
      });
    }
    var colX = [], colW = [], x0 = MARGIN;
    cols.forEach(function (col) {
      var w = 0;
      col.forEach(function (k) { w = Math.max(w, dims[k].w); });
      w = w || CONST_W;
      colX.push(x0 + w / 2); colW.push(w);
      x0 += w + COL_GAP;
    });
    var P = {}, top = Infinity, bottom = -Infinity;
    ids.forEach(function (k) {
      P[k] = {x: colX[rank[k]], y: y[k], w: dims[k].w, h: dims[k].h, rank: rank[k]};
      top = Math.min(top, y[k] - dims[k].h / 2); bottom = Math.max(bottom, y[k] + dims[k].h / 2);
    });
    // routes: a curve from source to target, or, where that would cross a node, a lane
    var routes = {}, lanes = {above: [], below: []}, mid = (top + bottom) / 2, LANE = 9;
    function crosses(a, b) {
      for (var r = a.rank + 1; r < b.rank; r++) {
        var t = (colX[r] - a.x) / (b.x - a.x), yy = a.y + (b.y - a.y) * t;
        for (var i = 0; i < cols[r].length; i++) {
          var n = P[cols[r][i]];
          if (Math.abs(n.y - yy) < n.h / 2 + 6) return true;
        }
      }
      return false;
    }
    var long = [];
    V.links.forEach(function (l) {
      var a = P[l.from], b = P[l.to];
      var start = [a.x + a.w / 2, a.y], end = [b.x - b.w / 2 - 2, b.y];
      if (b.rank - a.rank > 1 && crosses(a, b)) long.push(l);
      else routes[l.key] = [start, end];
    });
    long.sort(function (l1, l2) { return (P[l1.to].rank - P[l1.from].rank) - (P[l2.to].rank - P[l2.from].rank); });
    long.forEach(function (l) {
      var a = P[l.from], b = P[l.to];
      var x1 = a.x + a.w / 2, x2 = b.x - b.w / 2 - 2;
      var side = (a.y + b.y) / 2 <= mid ? "above" : "below", used = lanes[side], lane = 0;
      while (used[lane] && used[lane].some(function (iv) { return x1 < iv[1] + 8 && iv[0] < x2 + 8; })) lane++;
      (used[lane] = used[lane] || []).push([x1, x2]);
      var ly = side === "above" ? top - 14 - LANE * lane : bottom + 14 + LANE * lane;
      routes[l.key] = [[x1, a.y], [x1 + COL_GAP / 2, ly], [x2 - COL_GAP / 2, ly], [x2, b.y]];
    });
    var minY = top - (lanes.above.length ? 14 + LANE * lanes.above.length : 0);
    var maxY = bottom + (lanes.below.length ? 14 + LANE * lanes.below.length : 0);
    var dy = MARGIN - minY;
    ids.forEach(function (k) { P[k].y += dy; });
    Object.keys(routes).forEach(function (k) { routes[k].forEach(function (pt) { pt[1] += dy; }); });
    return {pos: P, routes: routes, width: x0 - COL_GAP + MARGIN, height: maxY - minY + 2 * MARGIN};
  }

  // A smooth path through the points: horizontal tangents at every point.
  function routePath(pts) {
    var d = "M" + pts[0][0] + "," + pts[0][1];
    for (var i = 1; i < pts.length; i++) {
      var a = pts[i - 1], b = pts[i];
      if (Math.abs(a[1] - b[1]) < 0.5) { d += " L" + b[0] + "," + b[1]; continue; }
      var dx = Math.max(12, (b[0] - a[0]) / 2);
      d += " C" + (a[0] + dx) + "," + a[1] + " " + (b[0] - dx) + "," + b[1] + " " + b[0] + "," + b[1];
    }
    return d;
  }

  // ------------------------------------------------------------------ the page
  function build() {
    clear(app);
    var d = PAYLOAD.explanations[S.ix];
    E = prepare(d);
    if (S.collapse == null) S.collapse = E.m.nodes.length > AUTO_COLLAPSE && E.groups.length > 0;
    if (S.step >= E.steps.length) S.step = E.steps.length - 1;
    if (PAYLOAD.embedded) document.body.classList.add("embedded");
    var m = E.m;

    var header = h("header", {class: "top"},
      h("div", {class: "brand"}, "chainrule ", h("span", {class: "muted"}, "backward-pass explorer")),
      PAYLOAD.explanations.length > 1 ? h("select", {id: "which", "aria-label": "derivation",
          onchange: function (ev) { S.ix = Number(ev.target.value); resetView(); build(); }},
          PAYLOAD.explanations.map(function (x, i) {
            var o = h("option", {value: i}, x.heading);
            if (i === S.ix) o.selected = true;
            return o;
          })) : h("h1", {class: "title"}, d.heading),
      h("span", {class: "loss"}, d.heading !== m.title && PAYLOAD.explanations.length === 1 ? m.title + ": " : "",
        tex(E.lossLatex + " = " + fmtVal(m.loss.value, E.digits))),
      verifyBadge(m));
    add(app, header);
    if (m.nan) add(app, h("div", {class: "banner warn"}, "⚠ " + m.nan.message));
    var tabs = [["graph", "Graph"], ["layers", "Layers (δ)"], ["worksheet", "Worksheet"], ["derivation", "Derivation"]];
    var bar = h("nav", {class: "tabs", role: "tablist"});
    tabs.forEach(function (t) {
      add(bar, h("button", {type: "button", role: "tab", class: "tab" + (S.tab === t[0] ? " active" : ""),
                            "data-tab": t[0], onclick: function () { setTab(t[0]); }}, t[1]));
    });
    add(app, bar);
    UI.panes = {};
    tabs.forEach(function (t) {
      UI.panes[t[0]] = h("section", {class: "pane", "data-pane": t[0]});
      add(app, UI.panes[t[0]]);
    });
    buildGraphPane(UI.panes.graph);
    UI.built = {graph: true};
    setTab(S.tab);
  }

  function resetView() {
    S.step = -1; S.focus = null; S.selected = null; S.inspect = null; S.collapse = null;
    S.hide = null; S.zoom = 1; UI.fitted = false; stopPlay();
  }

  function verifyBadge(m) {
    var v = m.verification;
    if (!v || !v.enabled) return h("span", {class: "badge muted", title: "explain(..., verify=True) checks every local derivative against a finite difference"}, "not verified");
    var bad = v.checks.filter(function (c) { return !c.ok; }).length;
    return h("span", {class: "badge " + (bad ? "bad" : "good"), "data-role": "verification"},
             bad ? "✗ " + bad + " of " + v.checks.length + " checks failed" :
                   "✓ " + v.checks.length + " local derivatives checked");
  }

  function setTab(name) {
    S.tab = name;
    Array.prototype.forEach.call(app.querySelectorAll(".tab"), function (b) {
      b.classList.toggle("active", b.getAttribute("data-tab") === name);
      b.setAttribute("aria-selected", b.getAttribute("data-tab") === name ? "true" : "false");
    });
    Object.keys(UI.panes).forEach(function (k) { UI.panes[k].hidden = k !== name; });
    if (!UI.built[name]) {
      UI.built[name] = true;
      if (name === "layers") buildLayers(UI.panes.layers);
      if (name === "worksheet") buildWorksheet(UI.panes.worksheet);
      if (name === "derivation") buildDerivation(UI.panes.derivation);
    }
  }

  // ------------------------------------------------------------------ graph pane
  function buildGraphPane(pane) {
    var tb = h("div", {class: "toolbar"});
    function btn(id, label, title, f) {
      return h("button", {type: "button", id: id, class: "ctl", title: title, "aria-label": title, onclick: f}, label);
    }
    add(tb, [btn("first", "|◀", "first step (Home)", function () { go(0); }),
             btn("back", "◀", "back (←)", function () { go(S.step - 1); }),
             btn("play", "play", "play / pause (space)", togglePlay),
             btn("next", "▶", "next (→)", function () { go(S.step + 1); }),
             btn("last", "▶|", "last step (End)", function () { go(E.steps.length - 1); }),
             btn("overview", "all", "overview: every value and gradient", function () { go(-1); })]);
    UI.counter = h("span", {class: "counter", id: "counter"});
    add(tb, UI.counter);
    add(tb, h("span", {class: "spacer"}));
    if (E.groups.length) {
      var cb = h("input", {type: "checkbox", id: "collapse", onchange: function (ev) { S.collapse = ev.target.checked; drawGraph(); }});
      cb.checked = !!S.collapse;
      add(tb, h("label", {class: "opt", title: "draw each layer / textbook compound as one box"}, cb, " collapse layers"));
    }
    var focus = h("select", {id: "focus", "aria-label": "focus on a parameter",
                             onchange: function (ev) {
                               S.focus = ev.target.value === "" ? null : Number(ev.target.value);
                               if (S.focus != null) S.selected = S.focus;
                               drawGraph(); showSide();
                             }},
                  h("option", {value: ""}, "focus: whole graph"),
                  E.params.map(function (p) {
                    var o = h("option", {value: p}, "focus: " + E.label(p));
                    if (S.focus === p) o.selected = true;
                    return o;
                  }));
    add(tb, focus);
    add(tb, [btn("zoomout", "−", "zoom out", function () { zoom(S.zoom / 1.25); }),
             btn("zoomin", "+", "zoom in", function () { zoom(S.zoom * 1.25); }),
             btn("zoomfit", "fit", "fit the graph to the window", fit)]);
    add(pane, tb);
    UI.graph = h("div", {class: "graph", id: "graph", tabindex: "0"});
    UI.maxH = PAYLOAD.embedded ? 330 : Math.max(260, Math.round(window.innerHeight * 0.56));
    UI.side = h("aside", {class: "side", id: "side"});
    add(pane, h("div", {class: "row"}, UI.graph, UI.side));
    UI.panel = h("div", {class: "panel", id: "panel", "aria-live": "polite"});
    add(pane, UI.panel);
    add(pane, legend());
    drawGraph();
    showSide();
  }

  function legend() {
    return h("div", {class: "legend muted"},
      h("span", {class: "sw param"}), " parameter ", h("span", {class: "sw input"}), " input / target ",
      h("span", {class: "sw op"}), " operation ", h("span", {class: "sw loss"}), " output ",
      h("span", {class: "sw hidden"}), " inside a textbook compound  ·  click a parameter for its chain-rule product, any node for its values; ← → step, space plays");
  }

  function zoom(z) {
    S.zoom = Math.max(0.2, Math.min(3, z));
    if (UI.svg) {
      UI.svg.setAttribute("width", UI.L.width * S.zoom); UI.svg.setAttribute("height", UI.L.height * S.zoom);
      // no taller than the graph needs (plus room for a scrollbar)
      UI.graph.style.height = Math.max(180, Math.min(UI.maxH || 560, UI.L.height * S.zoom + 24)) + "px";
    }
  }
  function fit() {
    if (!UI.L) return;
    var w = UI.graph.clientWidth - 8, hh = UI.graph.clientHeight - 8;
    zoom(Math.min(1.5, w / UI.L.width, hh > 40 ? hh / UI.L.height : 10));
  }

  function drawGraph() {
    var V = viewOf(E);
    var L = layout(V);
    UI.V = V; UI.L = L;
    var svg = s("svg", {viewBox: "0 0 " + L.width + " " + L.height, width: L.width * S.zoom,
                        height: L.height * S.zoom, class: "gsvg", role: "img",
                        "aria-label": "computational graph"});
    var defs = s("defs");
    [["arrow", "#8a94a6"], ["arrow-fwd", "#2f6fdf"], ["arrow-back", "#d9480f"], ["arrow-path", "#c92a2a"]].forEach(function (a) {
      var mk = s("marker", {id: a[0], viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"});
      mk.appendChild(s("path", {d: "M0,0 L10,5 L0,10 z", fill: a[1]}));
      defs.appendChild(mk);
    });
    svg.appendChild(defs);
    var gE = s("g", {class: "edges"}), gN = s("g", {class: "nodes"}), gL = s("g", {class: "labels"});
    svg.appendChild(gE); svg.appendChild(gN); svg.appendChild(gL);
    UI.edgeEls = {}; UI.nodeEls = {}; UI.linkOf = {}; UI.itemEls = {};
    V.links.forEach(function (l) {
      var pts = L.routes[l.key];
      var x1 = pts[0][0], y1 = pts[0][1], x2 = pts[pts.length - 1][0], y2 = pts[pts.length - 1][1];
      var g = s("g", {class: "link", "data-link": l.key});
      var path = s("path", {class: "edge", d: routePath(pts), "marker-end": "url(#arrow)"});
      g.appendChild(path);
      // the gradient a backward step sends: written just beside the value it reaches
      var lab = s("g", {class: "elabel", transform: "translate(" + (x1 + 4) + "," + (y1 - 8) + ")"});
      lab.appendChild(s("rect", {x: -2, y: -11, width: 0, height: 15, rx: 3}));
      lab.appendChild(s("text", {x: 0, y: 0}));
      gL.appendChild(lab);
      var chk = l.edges.map(function (e) { return e.check; }).filter(Boolean);
      if (chk.length) {
        var ok = chk.every(function (c) { return c.ok; });
        var mark = s("text", {class: "echeck " + (ok ? "good" : "bad"), x: x2 - 12, y: y2 - 5, "text-anchor": "middle"});
        mark.textContent = ok ? "✓" : "✗";
        var tt = s("title");
        tt.textContent = chk.map(function (c) { return "rule " + fmtNum(c.rule, 8) + " vs finite difference " + fmtNum(c.numeric, 8); }).join("\n");
        mark.appendChild(tt);
        g.appendChild(mark);
      }
      gE.appendChild(g);
      l.edges.forEach(function (e) { UI.edgeEls[e.k] = g; UI.linkOf[e.k] = l; });
      g.__path = path; g.__label = lab; g.__link = l;
    });
    V.order.forEach(function (key) {
      var it = V.items[key], p = L.pos[key];
      var n = it.node, cls = "node";
      if (it.group) cls += " group";
      else if (n.id === E.lossId) cls += " loss";
      else if (n.role === "parameter") cls += " param";
      else if (n.role === "input" || n.role === "target") cls += " input";
      else if (E.isConst(n)) cls += " const";
      else cls += " op";
      if (n && n.role === "hidden") cls += " hidden";
      var g = s("g", {class: cls, transform: "translate(" + (p.x - p.w / 2) + "," + (p.y - p.h / 2) + ")",
                      "data-key": key, "data-id": n ? n.id : null, tabindex: "0"});
      g.appendChild(s("rect", {width: p.w, height: p.h, rx: 7, ry: 7}));
      var t1 = s("text", {x: p.w / 2, y: n && E.isConst(n) ? 15 : 15, "text-anchor": "middle", class: "t1"});
      var t2 = s("text", {x: p.w / 2, y: 30, "text-anchor": "middle", class: "t2"});
      var t3 = s("text", {x: p.w / 2, y: 44, "text-anchor": "middle", class: "t3"});
      g.appendChild(t1);
      if (!(n && E.isConst(n))) { g.appendChild(t2); g.appendChild(t3); }
      var tip = s("title");
      g.appendChild(tip);
      if (it.group) {
        t1.textContent = trunc(it.group.title, 22);
        tip.textContent = it.group.title + ": " + it.ids.map(E.label).join(", ");
      } else if (E.isConst(n)) {
        t1.textContent = trunc(E.label(n.id), 7);
        tip.textContent = "constant " + fmtVal(n.value, E.digits);
      } else {
        var title = n.op === null ? E.label(n.id) : (n.name ? n.name + " = " + n.symbol : n.symbol + "  #" + n.id);
        t1.textContent = trunc(title, 21);
        tip.textContent = (n.name || "#" + n.id) + (n.op ? " (" + n.op + ")" : " (" + n.role + ")") +
                          ", shape [" + n.shape.join(", ") + "]";
      }
      g.__t2 = t2; g.__t3 = t3; g.__item = it;
      g.addEventListener("click", function () { clickNode(it); });
      g.addEventListener("keydown", function (ev) { if (ev.key === "Enter") clickNode(it); });
      gN.appendChild(g);
      it.ids.forEach(function (id) { if (!(id in UI.nodeEls) || !E.isConst(E.byId[id])) UI.nodeEls[id] = g; });
      UI.itemEls[key] = g;
    });
    clear(UI.graph).appendChild(svg);
    UI.svg = svg;
    if (!UI.fitted) {             // first drawing: shrink a wide graph to the window, within reason
      UI.fitted = true;
      var avail = UI.graph.clientWidth - 10;
      if (avail > 100 && L.width * S.zoom > avail) zoom(Math.max(0.75, avail / L.width));
    } else zoom(S.zoom);
    render();
  }

  function clickNode(it) {
    if (it.group) { S.inspect = it.group.top; }
    else if (it.node.role === "parameter") {
      S.selected = S.selected === it.node.id ? null : it.node.id;
      S.inspect = it.node.id;
    } else S.inspect = it.node.id;
    render();
    showSide();
  }

  // ------------------------------------------------------------------ state at a step
  // Which values are known, and each value's gradient so far, after step `i`.
  function stateAt(i) {
    var st = {known: {}, grad: {}, count: {}, complete: {}, updated: {}};
    var steps = E.steps;
    if (i < 0) {
      E.m.nodes.forEach(function (n) { st.known[n.id] = true; if (n.grad !== null) { st.grad[n.id] = n.grad; st.complete[n.id] = true; } });
      E.m.updates.forEach(function (u, k) { st.updated = {}; u.params.forEach(function (p) { st.updated[p.param] = p; }); });
      return st;
    }
    // start from the latest state already worked out (stepping moves one step at a time)
    var cache = E.stateCache || (E.stateCache = []), j0 = 0;
    for (var c = Math.min(i, cache.length - 1); c >= 0; c--) {
      if (cache[c]) {
        var prev = cache[c];
        st = {known: Object.assign({}, prev.known), grad: Object.assign({}, prev.grad),
              count: Object.assign({}, prev.count), complete: Object.assign({}, prev.complete),
              updated: Object.assign({}, prev.updated)};
        j0 = c + 1;
        break;
      }
    }
    if (j0 === 0) E.m.nodes.forEach(function (n) { if (E.isConst(n)) st.known[n.id] = true; });
    for (var j = j0; j <= i && j < steps.length; j++) {
      var sp = steps[j];
      if (sp.kind === "forward") st.known[sp.node] = true;
      else if (sp.kind === "seed") { st.grad[sp.node] = E.byId[sp.node].grad; st.complete[sp.node] = true; }
      else if (sp.kind === "backward") {
        var e = sp.edge;
        st.grad[e.from] = st.grad[e.from] == null ? e.passed : zip2(st.grad[e.from], e.passed, function (a, b) { return a + b; });
        st.count[e.from] = (st.count[e.from] || 0) + 1;
        if (st.count[e.from] === (E.contribs[e.from] || []).length) st.complete[e.from] = true;
      } else if (sp.kind === "update") {
        E.m.updates[sp.index].params.forEach(function (p) { st.updated[p.param] = p; });
      }
    }
    if (i < steps.length) cache[i] = st;
    return st;
  }

  function go(i) {
    var n = E.steps.length;
    S.step = Math.max(-1, Math.min(n - 1, i));
    if (S.step === n - 1) stopPlay();
    render();
  }
  function togglePlay() {
    if (S.playing) { stopPlay(); return; }
    if (S.step >= E.steps.length - 1) S.step = -1;
    S.playing = setInterval(function () { go(S.step + 1); }, 900);
    var b = document.getElementById("play");
    if (b) { b.classList.add("on"); b.textContent = "pause"; }
  }
  function stopPlay() {
    if (S.playing) clearInterval(S.playing);
    S.playing = null;
    var b = document.getElementById("play");
    if (b) { b.classList.remove("on"); b.textContent = "play"; }
  }

  function render() {
    if (!UI.svg) return;
    var st = stateAt(S.step);
    var sp = S.step >= 0 ? E.steps[S.step] : null;
    UI.counter.textContent = sp ? stepName(sp) : "overview — press → to step through the forward and backward pass";
    UI.counter.setAttribute("data-step", S.step);
    var path = S.selected != null ? onPath(E, S.selected) : null;
    // nodes
    Object.keys(UI.V.items).forEach(function (key) {
      var it = UI.V.items[key];
      var g = UI.itemEls[key];
      var id = it.group ? it.group.top : it.node.id;
      if (it.group && !(id in UI.V.rep)) id = it.ids[it.ids.length - 1];
      var n = E.byId[id];
      var known = it.ids.every(function (x) { return st.known[x]; });
      g.classList.toggle("unknown", !known);
      if (!(it.node && E.isConst(it.node))) {
        var upd = st.updated[id];
        g.__t2.textContent = !known ? "= ?" : !upd ? "= " + shortVal(n.value) :
          isArr(upd.new) ? shortVal(upd.old, true) + " → " + shortVal(upd.new, true) : shortVal(upd.old) + " → " + shortVal(upd.new);
        var gr = st.grad[id];
        if (gr == null) g.__t3.textContent = n.grad == null ? "" : "grad ·";
        else g.__t3.textContent = (st.complete[id] ? "grad " : "Σ so far ") + shortVal(E.gd != null ? mapVal(gr, function (x) { return roundTo(x, E.gd); }) : gr);
      }
      g.classList.remove("current", "cur-from", "cur-to", "on-path", "selected", "dim");
      if (path) {
        var on = it.ids.some(function (x) { return path[x]; });
        g.classList.toggle("on-path", on);
        g.classList.toggle("dim", !on);
        if (it.node && it.node.id === S.selected) g.classList.add("selected");
      }
    });
    // links
    Object.keys(UI.edgeEls).forEach(function (k) {
      var g = UI.edgeEls[k];
      g.classList.remove("fwd", "back", "on-path", "dim", "hover");
      g.__path.setAttribute("marker-end", "url(#arrow)");
      g.__path.removeAttribute("marker-start");
      setLabel(g.__label, "");
    });
    if (path) {
      UI.V.links.forEach(function (l) {
        var g = UI.edgeEls[l.edges[0].k];
        var on = l.edges.some(function (e) { return path[e.from] && path[e.to]; });
        g.classList.toggle("on-path", on);
        g.classList.toggle("dim", !on);
        if (on) g.__path.setAttribute("marker-end", "url(#arrow-path)");
      });
    }
    if (sp && sp.kind === "forward") {
      var ng = UI.nodeEls[sp.node];
      if (ng) ng.classList.add("current");
      E.inE[sp.node].forEach(function (e) {
        var g = UI.edgeEls[e.k];
        if (g) { g.classList.add("fwd"); g.__path.setAttribute("marker-end", "url(#arrow-fwd)"); }
      });
    } else if (sp && sp.kind === "seed") {
      var lg = UI.nodeEls[sp.node];
      if (lg) lg.classList.add("current");
    } else if (sp && sp.kind === "backward") {
      var e = sp.edge, g2 = UI.edgeEls[e.k];
      if (g2) {
        g2.classList.add("back");
        g2.__path.removeAttribute("marker-end");      // the gradient flows against the edge
        g2.__path.setAttribute("marker-start", "url(#arrow-back)");
        setLabel(g2.__label, shortVal(E.gd != null ? mapVal(e.passed, function (x) { return roundTo(x, E.gd); }) : e.passed));
      }
      if (UI.nodeEls[e.to]) UI.nodeEls[e.to].classList.add("cur-to");
      if (UI.nodeEls[e.from]) UI.nodeEls[e.from].classList.add("cur-from");
    } else if (sp && sp.kind === "update") {
      E.m.updates[sp.index].params.forEach(function (p) { if (UI.nodeEls[p.param]) UI.nodeEls[p.param].classList.add("current"); });
    }
    if (S.hoverPath) {
      var hp = {};
      S.hoverPath.forEach(function (pair) {
        var desc = {}; desc[pair[1]] = true;
        E.m.nodes.forEach(function (n) { if (n.inputs.some(function (i) { return desc[i]; })) desc[n.id] = true; });
        var anc = ancestors(E, [pair[0]]);
        Object.keys(desc).forEach(function (k) { if (anc[k]) hp[k] = true; });
      });
      Object.keys(UI.linkOf).forEach(function (k) {
        var l = UI.linkOf[k];
        if (l.edges.some(function (e) { return hp[e.from] && hp[e.to]; })) UI.edgeEls[k].classList.add("hover");
      });
    }
    renderPanel(sp, st);
    var cur = sp ? (sp.kind === "backward" ? UI.edgeEls[sp.edge.k] : UI.nodeEls[sp.node]) : null;
    if (cur) reveal(cur);
  }

  function setLabel(lab, text) {
    var t = lab.lastChild, r = lab.firstChild;
    t.textContent = text;
    lab.style.display = text ? "" : "none";
    if (text) {
      var w = 7 * text.length;
      try { w = t.getComputedTextLength(); } catch (err) { /* not laid out yet */ }
      r.setAttribute("width", w + 4);
    }
  }

  // Scroll the graph (only the graph) so that the current node or edge is in view.
  function reveal(el) {
    if (!el.getBoundingClientRect) return;
    var b = el.getBoundingClientRect(), c = UI.graph.getBoundingClientRect(), pad = 24;
    if (b.width === 0 && b.height === 0) return;
    if (b.left < c.left + pad) UI.graph.scrollLeft -= c.left + pad - b.left;
    else if (b.right > c.right - pad) UI.graph.scrollLeft += Math.min(b.right - c.right + pad, b.left - c.left - pad);
    if (b.top < c.top + pad) UI.graph.scrollTop -= c.top + pad - b.top;
    else if (b.bottom > c.bottom - pad) UI.graph.scrollTop += Math.min(b.bottom - c.bottom + pad, b.top - c.top - pad);
  }

  function stepName(sp) {
    var n = E.steps.length;
    var i = E.steps.indexOf(sp) + 1;
    if (sp.kind === "forward") return "step " + i + "/" + n + " · forward " + (sp.fi + 1) + "/" + E.nForward + ": " + E.label(sp.node);
    if (sp.kind === "seed") return "step " + i + "/" + n + " · backward starts at " + E.lossName;
    if (sp.kind === "backward") return "step " + i + "/" + n + " · backward " + (sp.bi + 1) + "/" + E.nBackward + ": " + E.label(sp.edge.to) + " → " + E.label(sp.edge.from);
    return "step " + i + "/" + n + " · update " + (sp.index + 1);
  }

  // ------------------------------------------------------------------ the step panel
  function renderPanel(sp, st) {
    var p = clear(UI.panel);
    p.setAttribute("data-kind", sp ? sp.kind : "overview");
    if (!sp) {
      var m = E.m;
      add(p, h("h3", null, "Overview"));
      add(p, h("p", null, "Every value and its gradient ∂" + E.lossName + "/∂value as the engine computed them. " +
        E.nForward + " forward steps (one per value), then the backward pass: " + E.nBackward +
        " edges in the order the engine ran them" + (m.updates.length ? ", then " + m.updates.length + " update step" + (m.updates.length > 1 ? "s" : "") : "") + "."));
      m.notes.forEach(function (t) { add(p, h("p", {class: "muted"}, t)); });
      return;
    }
    if (sp.kind === "forward") forwardPanel(p, sp);
    else if (sp.kind === "seed") seedPanel(p, sp);
    else if (sp.kind === "backward") backwardPanel(p, sp, st);
    else updatePanel(p, E.m.updates[sp.index]);
  }

  function kv(label, el) { return h("div", {class: "kv"}, h("span", {class: "k"}, label), el); }

  function forwardPanel(p, sp) {
    var n = E.byId[sp.node];
    add(p, h("h3", null, "Forward " + (sp.fi + 1) + " of " + E.nForward + ": " + E.label(n.id)));
    if (n.op === null) {
      add(p, h("p", null, "Given " + n.role + " ", h("b", null, E.label(n.id)), ", shape [" + n.shape.join(", ") + "]:"));
      add(p, kv(E.label(n.id) + " =", numEl("value", n.value, {title: E.label(n.id)})));
      return;
    }
    var ln = E.fwdLine[n.id];
    if (ln && ln.latex) add(p, h("div", {class: "formula"}, tex(ln.latex, true)));
    var op = E.d.ops[n.op];
    if (op) {
      var names = n.inputs.map(function (id, i) { return op.inputs[Math.min(i, op.inputs.length - 1)] + " = " + E.label(id); });
      add(p, h("div", {class: "rule"}, h("span", {class: "muted"}, n.op + " (registry): "), tex("y = " + op.formula),
               h("span", {class: "muted"}, "  with " + names.join(", "))));
    }
    var ins = h("div", {class: "inputs"});
    n.inputs.forEach(function (id, i) {
      add(ins, kv(E.label(id) + " =", numEl("input", E.byId[id].value, {title: E.label(id)})));
    });
    add(p, ins);
    add(p, kv(E.label(n.id) + " =", numEl("value", n.value, {title: E.label(n.id), cls: "big"})));
    if (n.unrounded != null) add(p, h("p", {class: "muted"}, "written rounded to " + E.m.settings.round + " decimals (from " + fmtVal(n.unrounded, E.digits) + ")"));
    if (n.source) add(p, h("p", {class: "muted"}, "made at " + n.source.file + ":" + n.source.line + "  " + (n.source.code || "")));
  }

  function seedPanel(p, sp) {
    var n = E.byId[sp.node];
    add(p, h("h3", null, "Backward pass starts at " + E.lossName));
    add(p, h("div", {class: "formula"}, tex("\\frac{\\partial " + E.lossLatex + "}{\\partial " + E.lossLatex + "} = 1", true)));
    add(p, kv("∂" + E.lossName + "/∂" + E.lossName + " =", numEl("seed", n.grad)));
    add(p, h("p", {class: "muted"}, "From here the engine visits the values in the order below (" + E.m.backward_order.length +
      " backward rules), each sending upstream gradient × local derivative to its inputs."));
  }

  // The derivation's own cell for the local derivative along edge e, if it writes one.
  function cellFor(e) {
    var w = e.to, guard = 0;
    while (guard++ < 50) {
      var row = E.row[w];
      if (row) {
        var c = row.cells.filter(function (c) { return c.wrt === e.from; })[0];
        if (c) return {row: row, cell: c};
        if (E.byId[w].shown || E.byId[w].name) return {row: row, cell: null};
      }
      var outs = E.outE[w];
      if (outs.length !== 1 || E.byId[w].shown) return null;
      w = outs[0].to;
    }
    return null;
  }

  function backwardPanel(p, sp, st) {
    var e = sp.edge, u = E.byId[e.from], v = E.byId[e.to];
    var L = E.lossLatex, ul = E.latex(u.id), vl = E.latex(v.id);
    add(p, h("h3", null, "Backward " + (sp.bi + 1) + " of " + E.nBackward + ": " + E.label(v.id) + " → " + E.label(u.id)));
    var op = E.d.ops[v.op];
    if (op) {
      var i = Math.min(e.input, op.derivs.length - 1), var_ = op.inputs[Math.min(e.input, op.inputs.length - 1)];
      add(p, h("div", {class: "rule"}, h("span", {class: "muted"}, v.op + " (registry): "),
               tex("y = " + op.formula + ",\\quad \\frac{\\partial y}{\\partial " + var_ + "} = " + op.derivs[i]),
               h("span", {class: "muted"}, "  with y = " + E.label(v.id) + ", " + var_ + " = " + E.label(u.id))));
    }
    var cf = cellFor(e);
    if (cf && cf.cell && cf.cell.latex) add(p, h("div", {class: "formula"}, tex(cf.cell.latex, true)));
    else if (cf && cf.row && cf.row.function && cf.row.function.latex) add(p, h("div", {class: "formula muted"}, tex(cf.row.function.latex, true)));
    add(p, h("div", {class: "formula"}, tex("\\frac{\\partial " + L + "}{\\partial " + ul + "} \\mathrel{+}= \\frac{\\partial " + L + "}{\\partial " + vl + "} \\cdot \\frac{\\partial " + vl + "}{\\partial " + ul + "}", true)));
    var prod = h("div", {class: "product"});
    add(prod, [h("span", {class: "muted"}, "upstream ∂" + E.lossName + "/∂" + E.label(v.id) + " "),
               numEl("upstream", v.grad, {round: E.gd, title: "∂" + E.lossName + "/∂" + E.label(v.id)})]);
    if (e.local !== null && e.local !== undefined) {
      add(prod, [h("span", {class: "op"}, " × "), h("span", {class: "muted"}, "local ∂" + E.label(v.id) + "/∂" + E.label(u.id) + " "),
                 numEl("local", e.local, {title: "∂" + E.label(v.id) + "/∂" + E.label(u.id)})]);
    } else {
      add(prod, [h("span", {class: "op"}, " ⟶ "), h("span", {class: "muted"}, "the rule applied to it (a matrix rule: no entry-by-entry factor) ")]);
    }
    add(prod, [h("span", {class: "op"}, " = "), h("span", {class: "muted"}, "contribution "),
               numEl("contribution", e.passed, {round: E.gd, title: "contribution to ∂" + E.lossName + "/∂" + E.label(u.id), cls: "big"})]);
    add(p, prod);
    if (isArr(e.passed) && isArr(v.grad) && shapeOf(v.grad).join() !== shapeOf(e.passed).join()) {
      add(p, h("p", {class: "muted"}, "(summed to " + E.label(u.id) + "'s shape [" + shapeOf(e.passed).join(", ") + "], from [" + shapeOf(v.grad).join(", ") + "])"));
    }
    if (e.check) {
      add(p, h("p", {class: "check " + (e.check.ok ? "good" : "bad")}, (e.check.ok ? "✓" : "✗") +
        " finite-difference check of this local derivative: rule " + fmtNum(e.check.rule, 8) + ", numeric " + fmtNum(e.check.numeric, 8)));
    }
    // the running sum at a value with several consumers
    var all = E.contribs[u.id] || [];
    if (all.length > 1) {
      var k = all.indexOf(e);
      var done = all.slice(0, k + 1);
      var box = h("div", {class: "running"});
      add(box, h("span", {class: "muted"}, E.label(u.id) + " is used by " + all.length + " later values; its gradient is the sum of their contributions (" + (k + 1) + " of " + all.length + " so far): "));
      var acc = null;
      done.forEach(function (x, j) {
        acc = acc == null ? x.passed : zip2(acc, x.passed, function (a, b) { return a + b; });
        if (j) add(box, " + ");
        add(box, h("span", {class: "term" + (x === e ? " cur" : "")}, fmtVal(E.gd != null ? mapVal(x.passed, function (y) { return roundTo(y, E.gd); }) : x.passed, E.digits)));
        add(box, h("span", {class: "via muted"}, " (via " + E.label(x.to) + ")"));
      });
      add(box, [" = ", numEl("running", acc, {round: E.gd, title: "∂" + E.lossName + "/∂" + E.label(u.id) + " so far"})]);
      if (k === all.length - 1) {
        add(box, [h("span", {class: "muted"}, "  — the engine's ∂" + E.lossName + "/∂" + E.label(u.id) + " = "), numEl("total", u.grad, {round: E.gd})]);
        var ps = E.pathSumOf[u.id];
        if (ps && ps.line && ps.line.latex) add(box, h("div", {class: "formula"}, tex(ps.line.latex, true)));
      }
      add(p, box);
    } else if (u.grad !== null) {
      add(p, h("p", {class: "muted"}, "This is " + E.label(u.id) + "'s only consumer: ∂" + E.lossName + "/∂" + E.label(u.id) + " = the contribution."));
    }
  }

  function stateTable(obj, role, param) {
    var keys = Object.keys(obj || {});
    if (!keys.length) return h("span", {class: "muted"}, "—");
    return h("span", {class: "state"}, keys.map(function (k) {
      return h("span", {class: "st"}, k + " = ", numEl(role + ":" + k, obj[k], {param: param}), " ");
    }));
  }

  function updatePanel(p, u) {
    add(p, h("h3", null, "Update " + (u.iteration + 1) + ": " + u.optimizer + " (η = " + fmtNum(u.lr, 6) + ")"));
    add(p, h("p", null, u.description));
    var hk = Object.keys(u.hyper || {});
    if (hk.length) add(p, h("p", {class: "muted"}, hk.map(function (k) { return k + " = " + JSON.stringify(u.hyper[k]); }).join(", ")));
    var t = h("table", {class: "upd"}, h("tr", null, ["parameter", "old", "gradient", "new", "state before", "state after", ""].map(function (x) { return h("th", null, x); })));
    u.params.forEach(function (q) {
      add(t, h("tr", {"data-param": q.param},
        h("td", null, q.name), h("td", null, numEl("old", q.old, {param: q.param})),
        h("td", null, numEl("grad", q.grad, {param: q.param})), h("td", null, numEl("new", q.new, {param: q.param, cls: "big"})),
        h("td", null, stateTable(q.state_before, "before", q.param)), h("td", null, stateTable(q.state, "state", q.param)),
        h("td", {class: q.ok ? "good" : "bad", title: "the written-out equations reproduce the optimizer's new value"}, q.ok ? "✓" : "✗")));
    });
    add(p, t);
    u.lines.forEach(function (ln) { if (ln.latex) add(p, h("div", {class: "formula"}, tex(ln.latex, true))); });
  }

  // ------------------------------------------------------------------ side: parameter / node
  function showSide() {
    var side = clear(UI.side);
    if (S.selected != null) paramPanel(side, S.selected);
    var id = S.inspect;
    if (id != null && id !== S.selected) nodePanel(side, id);
    if (S.selected == null && id == null) {
      add(side, h("p", {class: "muted"}, "Click a parameter to see its chain-rule product — every path from it to " + E.lossName +
        " is highlighted and their products summed — and its update. Click any value to see all its entries."));
      add(side, h("div", {class: "plist"}, E.params.map(function (pid) {
        return h("button", {type: "button", class: "chip", "data-param": pid, onclick: function () { S.selected = pid; S.inspect = pid; render(); showSide(); }}, E.label(pid));
      })));
    }
  }

  function paramPanel(side, pid) {
    var n = E.byId[pid], c = E.chainOf[pid];
    var box = h("div", {class: "card", id: "chain", "data-param": pid});
    add(box, h("h3", null, "Chain rule for " + E.label(pid),
               h("button", {type: "button", class: "link close", title: "close", onclick: function () { S.selected = null; S.inspect = null; S.hoverPath = null; render(); showSide(); }}, "×")));
    if (!c) {
      add(box, h("p", {class: "muted"}, n.grad == null ? "No gradient reaches " + E.label(pid) + "." : "No chain written for " + E.label(pid) + "."));
    } else {
      if (c.line && c.line.latex) add(box, h("div", {class: "formula"}, tex(c.line.latex, true)));
      var list = h("ol", {class: "paths"});
      c.paths.forEach(function (pth, j) {
        var pairs = [];
        for (var a = 0; a + 1 < pth.stops.length; a++) pairs.push([pth.stops[a], pth.stops[a + 1]]);
        var li = h("li", {"data-path": j, onmouseenter: function () { S.hoverPath = pairs; render(); }, onmouseleave: function () { S.hoverPath = null; render(); }},
          h("div", {class: "stops"}, pth.stops.slice().reverse().map(E.label).join(" → ")),
          pth.values ? h("div", null, pth.factors.map(function (f, i) {
            return [h("span", {class: "factor"}, f + " = ", numEl("factor", pth.values[i])), i + 1 < pth.factors.length ? " × " : ""];
          }), " ⇒ ", numEl("path", pth.product, {round: E.gd})) : h("div", {class: "muted"}, pth.factors.join(" · ")));
        add(list, li);
      });
      add(box, list);
      if (c.count && c.count > c.paths.length) add(box, h("p", {class: "muted"}, c.count + " paths in all; the first " + c.paths.length + " are listed."));
      if (c.paths.length > 1) add(box, h("p", null, "Sum over the " + c.paths.length + " paths:"));
      add(box, kv(c.label + " =", numEl("chain", c.written, {cls: "big"})));
      add(box, kv("engine's .grad =", numEl("grad", c.grad)));
      if (c.note) add(box, h("p", {class: "muted"}, c.note));
    }
    E.m.updates.forEach(function (u) {
      u.params.filter(function (q) { return q.param === pid; }).forEach(function (q) {
        add(box, h("h4", null, "Update " + (u.iteration + 1) + " (" + u.optimizer + ")"));
        add(box, kv("old", numEl("old", q.old, {param: pid})));
        add(box, kv("new", numEl("new", q.new, {param: pid})));
        if (Object.keys(q.state || {}).length) add(box, kv("state", stateTable(q.state, "state", pid)));
        u.lines.forEach(function (ln) {
          if (ln.latex && ln.refs.some(function (r) { return r[2] === n.name || r[2] === n.name + "(" + (u.iteration + 1) + ")"; }))
            add(box, h("div", {class: "formula"}, tex(ln.latex, true)));
        });
      });
    });
    add(side, box);
  }

  function nodePanel(side, id) {
    var n = E.byId[id];
    var box = h("div", {class: "card", id: "inspect", "data-id": id});
    add(box, h("h3", null, E.label(id) + (n.op ? " = " + n.op : " (" + n.role + ")"),
               h("button", {type: "button", class: "link close", title: "close", onclick: function () { S.inspect = null; showSide(); }}, "×")));
    add(box, h("p", {class: "muted"}, "shape [" + n.shape.join(", ") + "], " + n.dtype + (n.name ? "" : "; an unnamed value the derivation folds into a formula")));
    add(box, h("h4", null, "value"), valueTable(n.value, "value"));
    if (n.grad !== null) add(box, h("h4", null, "∂" + E.lossName + "/∂" + E.label(id)), valueTable(n.grad, "grad"));
    if (n.source) add(box, h("p", {class: "muted"}, n.source.file + ":" + n.source.line + " " + (n.source.code || "")));
    add(side, box);
  }

  function valueTable(v, role) {
    if (!isArr(v)) return h("div", null, numEl(role, v));
    var sh = shapeOf(v);
    if (sh.length === 1) v = [v];
    if (sh.length > 2) {
      return h("pre", {class: "mono", "data-role": role, "data-v": JSON.stringify(v)}, JSON.stringify(mapVal(v, function (x) { return Number(fmtNum(x, 6)); })));
    }
    var t = h("table", {class: "vals", "data-role": role, "data-v": JSON.stringify(v)});
    v.forEach(function (row) {
      add(t, h("tr", null, row.map(function (x) { return h("td", null, fmtNum(x, 6)); })));
    });
    return h("div", {class: "scroll"}, t);
  }

  function showTable(title, v) {
    var side = UI.side;
    if (!side) return;
    var box = h("div", {class: "card", id: "all-entries"},
      h("h3", null, title, h("button", {type: "button", class: "link close", onclick: function () { box.remove(); }}, "×")),
      valueTable(v, "all"));
    side.insertBefore(box, side.firstChild);
  }

  // ------------------------------------------------------------------ layers tab
  function buildLayers(pane) {
    var layers = E.m.layers.slice().sort(function (a, b) { return a.index - b.index; });
    if (!layers.length) {
      add(pane, h("p", {class: "muted"}, "No layers in this graph: the layer view (δ = ∂L/∂z per layer, δ_prev = f'(z) ⊙ Wᵀδ) is for networks of nn.Linear or X @ W layers."));
      return;
    }
    add(pane, h("p", null, "δ = ∂" + E.lossName + "/∂z of each layer, from the engine; the previous layer's δ is f'(z) ⊙ Wᵀδ. Last layer first, as the backward pass finds them."));
    var strip = h("div", {class: "lstrip"});
    layers.forEach(function (L) {
      var z = E.byId[L.z], a = L.a != null ? E.byId[L.a] : null;
      var col = h("div", {class: "lcol", "data-layer": L.index},
        h("div", {class: "lhead"}, "Layer " + L.index, h("span", {class: "muted"}, " " + (L.activation || "linear"))),
        neurons(L.delta));
      add(col, kv("δ" + L.index + " =", numEl("delta", L.delta, {title: "δ" + L.index})));
      var x = E.byId[L.x];
      if (x && x.grad !== null && L.index > 1) {
        add(col, kv("Wᵀδ → ∂" + E.lossName + "/∂" + E.label(x.id) + " =", numEl("wtdelta", x.grad, {title: "Wᵀδ" + L.index})));
      }
      add(strip, col);
    });
    add(pane, strip);
    layers.slice().reverse().forEach(function (L) {
      var card = h("div", {class: "card layer", "data-layer": L.index});
      L.lines.forEach(function (ln) {
        if (ln.kind === "para" || !ln.latex) add(card, h("p", {class: ln.kind === "para" ? "lpara" : ""}, ln.text));
        else add(card, h("div", {class: "formula"}, tex(ln.latex, true)));
      });
      if (L.checks && L.checks.length) {
        add(card, h("ul", {class: "checks"}, L.checks.map(function (c) {
          return h("li", {class: c.ok ? "good" : "bad"}, (c.ok ? "✓ " : "✗ ") + c.what + " = " + c.formula + (c.shape_ok === false ? " (shape differs)" : ""));
        })));
      }
      add(pane, card);
    });
  }

  function neurons(delta) {
    var f = flat(delta);
    if (f.length > 24) return h("div", {class: "muted"}, f.length + " units");
    var mx = f.reduce(function (a, x) { return Math.max(a, Math.abs(x)); }, 0) || 1;
    return h("div", {class: "neurons"}, f.map(function (x, i) {
      var t = Math.abs(x) / mx, col = x >= 0 ? "rgba(47,111,223," : "rgba(217,72,15,";
      return h("span", {class: "neuron", title: "δ[" + i + "] = " + fmtNum(x, 8), style: "background:" + col + (0.15 + 0.75 * t).toFixed(3) + ")"}, fmtNum(x, 3));
    }));
  }

  // ------------------------------------------------------------------ worksheet tab
  var WS_TITLES = {forward: "forward values", local: "local derivatives", chain: "gradients (chain rule)", update: "update step", all: "everything"};

  function buildWorksheet(pane) {
    clear(pane);
    var sheets = E.d.worksheets || {};
    var kinds = Object.keys(sheets);
    if (!kinds.length) { add(pane, h("p", {class: "muted"}, "Nothing to hide in this derivation.")); return; }
    if (!S.hide || !sheets[S.hide]) S.hide = sheets.chain ? "chain" : kinds[0];
    var ws = sheets[S.hide];
    var sel = h("select", {id: "hide", onchange: function (ev) { S.hide = ev.target.value; buildWorksheet(pane); }},
      kinds.map(function (k) { var o = h("option", {value: k}, "hide: " + (WS_TITLES[k] || k)); if (k === S.hide) o.selected = true; return o; }));
    var n = Object.keys(ws.blanks).length;
    var rule = "Fill in the " + n + " blank" + (n !== 1 ? "s" : "") + "; a number that appears in several places has the same blank everywhere.";
    if (ws.rounding != null) rule += " Round every function value (σ, exp, ln, √, division, …) to " + ws.rounding + " decimals as you go, as the key does; sums and products stay exact.";
    rule += " Answers are accepted to " + ws.sig + " significant figures" + (ws.rounding != null ? ", and a rounded function value also when it rounds to the key at " + ws.rounding + " decimals." : ".");
    add(pane, h("div", {class: "wshead"}, sel, h("p", null, rule)));
    var m = E.m, sheet = h("div", {class: "sheet", id: "sheet"});
    function heading(t) { add(sheet, h("h4", null, t)); }
    heading("Forward pass");
    m.forward.forEach(function (ln) { add(sheet, wsLine(ln, ws)); });
    heading("Local derivatives");
    m.steps.forEach(function (row) {
      add(sheet, h("div", {class: "wsrow"}, h("span", {class: "fn"}, row.function.text + ":  "),
        row.cells.map(function (c, i) { return [i ? ";  " : "", wsLine(c, ws, true)]; })));
      (row.notes || []).forEach(function (ln) { add(sheet, wsLine(ln, ws)); });
    });
    heading("Chain rule");
    m.chains.forEach(function (c) { if (c.line) add(sheet, wsLine(c.line, ws)); else add(sheet, h("p", {class: "muted"}, c.note)); });
    if (m.path_sums.length) {
      heading("Sums over paths");
      m.path_sums.forEach(function (ps) { add(sheet, wsLine(ps.line, ws)); });
    }
    m.updates.forEach(function (u) {
      heading("Update step");
      add(sheet, h("p", null, u.description));
      u.lines.forEach(function (ln) { add(sheet, wsLine(ln, ws)); });
    });
    add(pane, sheet);
    var score = h("div", {class: "score", id: "score"});
    add(pane, h("div", {class: "wsctl"},
      h("button", {type: "button", id: "check", class: "ctl wide", onclick: function () { checkSheet(ws, score); }}, "Check"),
      h("button", {type: "button", id: "reveal", class: "ctl wide", onclick: function () { revealSheet(ws); checkSheet(ws, score); }}, "Show answers"),
      h("button", {type: "button", id: "reset", class: "ctl wide", onclick: function () { buildWorksheet(pane); }}, "Clear"), score));
  }

  // One line with its hidden quantities as inputs (the worksheet's rules: every occurrence of
  // a hidden number is the same blank; "× (-0.21)" loses its brackets with the number).
  function wsLine(ln, ws, inline) {
    var text = ln.text, refs = (ln.refs || []).slice().sort(function (a, b) { return a[0] - b[0]; });
    var el = h(inline ? "span" : "div", {class: "wsline"});
    var at = 0;
    refs.forEach(function (r) {
      var start = r[0], end = r[1], q = r[2];
      if (!(q in ws.blanks) || start < at) return;
      if (text.charAt(start - 1) === "(" && text.charAt(end) === ")" && (start - 2 < 0 || text.charAt(start - 2) === " ")) { start -= 1; end += 1; }
      add(el, text.slice(at, start));
      var k = ws.blanks[q];
      var inp = h("input", {type: "text", class: "blank", "data-blank": k, "data-q": q, placeholder: String(k),
                            size: 9, "aria-label": "blank " + k + " (" + q + ")", autocomplete: "off", spellcheck: "false"});
      inp.addEventListener("input", function () {
        Array.prototype.forEach.call(document.querySelectorAll('input.blank[data-blank="' + k + '"]'), function (o) { if (o !== inp) o.value = inp.value; });
      });
      inp.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { var b = document.getElementById("check"); if (b) b.click(); } });
      add(el, h("span", {class: "bwrap"}, h("sup", {class: "bn"}, String(k)), inp, h("span", {class: "verdict", "data-blank": k})));
      at = end;
    });
    add(el, text.slice(at));
    if (ln.note && !(ln.note_of && ln.note_of in ws.blanks)) add(el, h("span", {class: "muted"}, "    (" + ln.note + ")"));
    return el;
  }

  function parseAnswer(t) {
    t = String(t).replace(/[−–]/g, "-").replace(/,(?=\d{3}\b)/g, ",");
    var m = t.match(/[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/g);
    return m ? m.map(Number) : [];
  }

  function tolerance(ws, q, key) {
    key = Math.abs(key);
    var tol;
    if (key === 0 || !isFinite(key)) tol = 0.5 * Math.pow(10, -(ws.rounding != null ? ws.rounding + 2 : 6));
    else tol = 0.5 * Math.pow(10, Math.floor(Math.log10(key)) - ws.sig + 1);
    if (ws.rounded[q] && ws.rounding != null) tol = Math.max(tol, 0.5 * Math.pow(10, -ws.rounding));
    return tol * (1 + 1e-9) + 1e-12;
  }

  // Mark one answer as Worksheet.check does: {ok, reason}.
  function judge(ws, q, text) {
    if (text == null || String(text).trim() === "") return {ok: false, reason: "no answer"};
    var got = parseAnswer(text), want = flat(ws.answers[q]);
    if (!got.length) return {ok: false, reason: "not a number"};
    if (got.length !== want.length) return {ok: false, reason: got.length + " numbers, expected " + want.length};
    var far = 0, ok = true;
    want.forEach(function (w, i) {
      var d = Math.abs(got[i] - w);
      far = Math.max(far, d);
      if (!(d <= tolerance(ws, q, w))) ok = false;
    });
    return {ok: ok, reason: ok ? "right" : "off by " + Number(far.toPrecision(3))};
  }

  function checkSheet(ws, score) {
    var right = 0, total = 0;
    Object.keys(ws.blanks).forEach(function (q) {
      var k = ws.blanks[q];
      var inp = document.querySelector('input.blank[data-blank="' + k + '"]');
      var v = judge(ws, q, inp ? inp.value : "");
      var empty = v.reason === "no answer";
      total++; if (v.ok) right++;
      Array.prototype.forEach.call(document.querySelectorAll('.verdict[data-blank="' + k + '"]'), function (el) {
        el.textContent = v.ok ? "✓" : empty ? "" : "✗";
        el.className = "verdict " + (v.ok ? "good" : empty ? "muted" : "bad");
        el.setAttribute("data-ok", v.ok ? "true" : "false");
        el.title = v.reason;
      });
      Array.prototype.forEach.call(document.querySelectorAll('input.blank[data-blank="' + k + '"]'), function (el) {
        el.classList.toggle("right", v.ok); el.classList.toggle("wrong", !v.ok && !empty);
        el.setAttribute("data-reason", v.reason);
      });
    });
    score.textContent = right + " of " + total + " right";
    score.setAttribute("data-right", right);
    score.setAttribute("data-total", total);
  }

  function revealSheet(ws) {
    Object.keys(ws.blanks).forEach(function (q) {
      var k = ws.blanks[q];
      Array.prototype.forEach.call(document.querySelectorAll('input.blank[data-blank="' + k + '"]'), function (el) {
        el.value = fmtVal(ws.answers[q], 10, true);
      });
    });
  }

  // ------------------------------------------------------------------ derivation tab
  function buildDerivation(pane) {
    var m = E.m;
    function line(ln) {
      var el = h("div", {class: "dline"});
      if (ln.latex) add(el, tex(ln.latex + (ln.note ? " \\quad \\text{(" + ln.note.replace(/[\\{}$&#^_%~]/g, " ") + ")}" : ""), true));
      else add(el, ln.text);
      return el;
    }
    add(pane, h("h2", null, m.title));
    m.notes.forEach(function (t) { add(pane, h("p", {class: "muted"}, t)); });
    add(pane, h("h3", null, "Forward pass"));
    m.forward.forEach(function (ln) { add(pane, line(ln)); });
    add(pane, h("h3", null, "Local derivatives"));
    m.steps.forEach(function (row) {
      add(pane, h("div", {class: "drow"}, h("div", {class: "dfn"}, tex(row.function.latex)),
        h("div", null, row.cells.map(function (c) { return line(c); }), (row.notes || []).map(line))));
    });
    add(pane, h("h3", null, "Chain rule"));
    m.chains.forEach(function (c) {
      if (c.line) add(pane, line(c.line));
      if (c.note) add(pane, h("p", {class: "muted"}, c.note));
    });
    if (m.path_sums.length) {
      add(pane, h("h3", null, "Sums over paths"));
      m.path_sums.forEach(function (ps) { add(pane, line(ps.line)); add(pane, h("p", {class: "muted"}, ps.note)); });
    }
    m.updates.forEach(function (u) {
      add(pane, h("h3", null, "Update step"));
      add(pane, h("p", null, u.description));
      u.lines.forEach(function (ln) { add(pane, line(ln)); });
    });
  }

  // ------------------------------------------------------------------ keyboard, messages
  document.addEventListener("keydown", function (ev) {
    var t = ev.target && ev.target.tagName;
    if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA" || S.tab !== "graph") return;
    if (ev.key === "ArrowRight") { go(S.step + 1); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft") { go(S.step - 1); ev.preventDefault(); }
    else if (ev.key === "Home") { go(0); ev.preventDefault(); }
    else if (ev.key === "End") { go(E.steps.length - 1); ev.preventDefault(); }
    else if (ev.key === " ") { togglePlay(); ev.preventDefault(); }
  });

  // The notebook widget sends new data after re-running the engine; the view keeps its step.
  window.addEventListener("message", function (ev) {
    var msg = ev.data;
    if (!msg || msg.chainrule !== "data" || !msg.payload) return;
    var same = PAYLOAD.explanations.length === msg.payload.explanations.length;
    PAYLOAD.explanations = msg.payload.explanations;
    if (!same) resetView();
    var keep = {step: S.step, selected: S.selected, inspect: S.inspect, focus: S.focus, tab: S.tab, collapse: S.collapse};
    build();
    S.selected = keep.selected; S.inspect = keep.inspect;
    render(); showSide();
  });

  window.chainruleExplorer = {
    state: S,
    payload: function () { return PAYLOAD; },
    steps: function () { return E.steps.map(function (sp) { return {kind: sp.kind, node: sp.node, edge: sp.edge ? sp.edge.k : null, index: sp.index}; }); },
    go: go, setTab: setTab, judge: function (hide, q, text) { return judge(E.d.worksheets[hide], q, text); },
    onPath: function (pid) { return Object.keys(onPath(E, pid)).map(Number).sort(function (a, b) { return a - b; }); },
    layout: function () { return UI.L; }
  };

  build();
  if (PAYLOAD.embedded && window.parent && window.parent !== window) {
    try { window.parent.postMessage({chainrule: "ready"}, "*"); } catch (err) { /* no parent */ }
  }
})();
