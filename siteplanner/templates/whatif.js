/* siteplanner what-if panel: re-score and re-select the candidates in the page.
 *
 * This mirrors siteplanner/rescore.py operation for operation (weighted_scores,
 * top_k), so the page lists exactly the sites `siteplanner rank --set
 * criteria.NAME.weight=W` chooses. Data strings only ever reach the page as
 * text (textContent, setAttribute); the popups of the run's own sites are HTML
 * that Python escaped.
 */
function spWhatifStart(map, cellsGroup, sitesGroup) {
  'use strict';
  var D = JSON.parse(document.getElementById('sp-whatif-data').textContent);
  var n = D.n, C = D.names.length, i, c;

  function b64(s, T) {
    var bin = atob(s), u = new Uint8Array(bin.length);
    for (var q = 0; q < bin.length; q++) { u[q] = bin.charCodeAt(q); }
    return new T(u.buffer);
  }

  // ---- the criteria, min-max normalised as siteplanner.model.normalise does
  var norm = D.crit.map(function (col) {
    var out = new Float64Array(n), q;
    if (col.t === 'u16') {
      var u = b64(col.v, Uint16Array);
      for (q = 0; q < n; q++) { out[q] = u[q] / 65535; }
      return out;
    }
    if (col.t === 'd8') {  // an index into the column's own normalised values: exact
      var idx = b64(col.v, Uint8Array), vals = b64(col.d, Float64Array);
      for (q = 0; q < n; q++) { out[q] = vals[idx[q]]; }
      return out;
    }
    var x = b64(col.v, Float64Array), lo = Infinity, hi = -Infinity;
    for (q = 0; q < n; q++) { if (x[q] < lo) { lo = x[q]; } if (x[q] > hi) { hi = x[q]; } }
    var span = hi - lo;
    if (!(isFinite(span) && span > 0)) { return out; }
    for (q = 0; q < n; q++) { out[q] = (x[q] - lo) / span; }
    return out;
  });

  function scoresFor(w) {
    var total = 0, s = new Float64Array(n), q;
    for (c = 0; c < C; c++) { total += w[c]; }
    for (c = 0; c < C; c++) {
      var f = D.signs[c] * (w[c] / total), col = norm[c];
      for (q = 0; q < n; q++) { s[q] = s[q] + f * col[q]; }
    }
    return s;
  }

  // ---- top K with both spacings (rows are in site-id order: ties go to the lower row)
  // ---- H3 families of a large study: each parent's id and a 64-bit mask of its children
  //      (rows in id order, a parent's children consecutive in digit order)
  var parent = null, digit = null, fam = D.ids.fam;
  if (fam) {
    var pHi = b64(fam.parents[0], Uint32Array), mHi = b64(fam.masks[0], Uint32Array);
    var mLo = b64(fam.masks[1], Uint32Array);
    parent = new Uint32Array(n);
    digit = new Uint8Array(n);
    for (var p = 0, row = 0; p < pHi.length; p++) {
      for (var bit = 0; bit < 64; bit++) {
        if ((bit < 32 ? mLo[p] >>> bit : mHi[p] >>> (bit - 32)) & 1) {
          parent[row] = p;
          digit[row] = bit;
          row += 1;
        }
      }
    }
  }
  var X, Y;
  if (D.rel) {  // parent centre + the digit's mean offset + the cell's own residual
    var PX0 = b64(D.agg.x, Int32Array), PY0 = b64(D.agg.y, Int32Array);
    var RX = b64(D.rel.x, Int8Array), RY = b64(D.rel.y, Int8Array);
    X = new Float64Array(n);
    Y = new Float64Array(n);
    for (i = 0; i < n; i++) {
      X[i] = PX0[parent[i]] + D.rel.tx[digit[i]] + RX[i] * D.rel.unit;
      Y[i] = PY0[parent[i]] + D.rel.ty[digit[i]] + RY[i] * D.rel.unit;
    }
  } else { X = b64(D.x, Int32Array); Y = b64(D.y, Int32Array); }
  var ownBits = b64(D.own, Uint8Array), nearOwn = new Uint8Array(n);
  for (i = 0; i < n; i++) { nearOwn[i] = (ownBits[i >> 3] >> (i & 7)) & 1; }
  var flips = new Set(D.flip);
  function within(a, b) {
    var dx = X[a] - X[b], dy = Y[a] - Y[b], w = dx * dx + dy * dy <= D.spacing_cm2;
    return flips.has(a < b ? a * n + b : b * n + a) ? !w : w;
  }
  function topK(s) {
    var order = new Uint32Array(n), q, chosen = [];
    for (q = 0; q < n; q++) { order[q] = q; }
    order.sort(function (a, b) { return (s[b] - s[a]) || (a - b); });
    for (q = 0; q < n && chosen.length < D.k; q++) {
      var r = order[q], ok = !nearOwn[r];
      for (var j = 0; ok && D.spacing > 0 && j < chosen.length; j++) {
        if (within(r, chosen[j])) { ok = false; }
      }
      if (ok) { chosen.push(r); }
    }
    return chosen;
  }

  // ---- names people read
  var ids = [];
  function hex(hi, lo) { return hi.toString(16) + ('0000000' + lo.toString(16)).slice(-8); }
  if (fam) {
    var fHi = b64(fam.parents[0], Uint32Array), fLo = b64(fam.parents[1], Uint32Array);
    var keep = ~(63 << fam.shift), resHi = [];
    for (i = 0; i < fHi.length; i++) { resHi.push(((fHi[i] & ~(15 << 20)) | (fam.res << 20)) >>> 0); }
    for (i = 0; i < n; i++) {
      ids.push(hex(resHi[parent[i]], ((fLo[parent[i]] & keep) | (digit[i] << fam.shift)) >>> 0));
    }
  } else if (D.ids.h3) {
    var hi = b64(D.ids.h3[0], Uint32Array), lo = b64(D.ids.h3[1], Uint32Array);
    for (i = 0; i < n; i++) { ids.push(hex(hi[i], lo[i])); }
  } else { ids = D.ids.list; }
  var addrIdx = D.addr ? b64(D.addr.idx, {1: Uint8Array, 2: Uint16Array, 4: Uint32Array}[D.addr.w]) : null;
  function placeName(r) {
    var a = addrIdx ? D.addr.values[addrIdx[r]] : '';
    return a ? a : ids[r];
  }

  // ---- positions: study metres -> degrees (a fitted quadratic, for drawing only)
  var lat = new Float64Array(n), lon = new Float64Array(n);
  function toLatLng(xc, yc) {
    var x = xc / 1e5, y = yc / 1e5, t = [1, x, y, x * x, x * y, y * y], a = 0, b = 0;
    for (var q = 0; q < 6; q++) { a += D.geo.lat[q] * t[q]; b += D.geo.lon[q] * t[q]; }
    return [a, b];
  }
  for (i = 0; i < n; i++) { var ll = toLatLng(X[i], Y[i]); lat[i] = ll[0]; lon[i] = ll[1]; }
  function hexAt(xc, yc, shape) {
    return shape.map(function (o) { return toLatLng(xc + o[0] * 100, yc + o[1] * 100); });
  }

  // ---- colours: the score ramp of the legend
  function colour(t) {
    var stops = D.ramp, p = Math.max(0, Math.min(1, t)) * (stops.length - 1), k = Math.floor(p);
    if (k >= stops.length - 1) { return stops[stops.length - 1]; }
    var f = p - k, a = stops[k], b = stops[k + 1], out = '#';
    for (var q = 1; q < 7; q += 2) {
      var v = Math.round(parseInt(a.substr(q, 2), 16) * (1 - f) + parseInt(b.substr(q, 2), 16) * f);
      out += ('0' + v.toString(16)).slice(-2);
    }
    return out;
  }

  var state = {weights: D.weights.slice(), scores: null, chosen: D.base.slice(), rankOf: {}};
  var baseRank = {};
  D.base.forEach(function (r, q) { baseRank[r] = q + 1; });

  function text(tag, s, cls) {
    var e = document.createElement(tag);
    e.textContent = s;
    if (cls) { e.className = cls; }
    return e;
  }
  function fmt(v) { return (Math.round(v * 1000) / 1000).toFixed(3); }

  // ---- score cells, on Leaflet's canvas renderer; large studies show H3 parents when zoomed out
  var renderer = L.canvas({padding: 0.3});
  var cellLayer = L.layerGroup().addTo(cellsGroup);
  function scoreRange() {
    var s = state.scores, mn = Infinity, mx = -Infinity;
    for (var q = 0; q < n; q++) { if (s[q] < mn) { mn = s[q]; } if (s[q] > mx) { mx = s[q]; } }
    return [mn, mx];
  }
  function cellTip(r) {
    return function () {
      var rk = state.rankOf[r];
      return text('span', 'score ' + fmt(state.scores[r]) + (rk ? ' · site #' + rk : '') +
                  ' · ' + placeName(r));
    };
  }
  function drawCells() {
    cellLayer.clearLayers();
    if (!map.hasLayer(cellsGroup)) { return; }
    var range = scoreRange(), span = range[1] - range[0] || 1, style = {
      renderer: renderer, color: '#ffffff', weight: 0.3, fillOpacity: 0.55};
    var agg = D.agg && map.getZoom() < D.agg.zoom;
    if (agg) {
      var m = D.agg.n, sum = new Float64Array(m), cnt = new Uint32Array(m), q;
      for (q = 0; q < n; q++) { sum[parent[q]] += state.scores[q]; cnt[parent[q]] += 1; }
      for (q = 0; q < m; q++) {
        if (!cnt[q]) { continue; }
        var mean = sum[q] / cnt[q];
        L.polygon(hexAt(PX[q], PY[q], D.agg.hex), L.extend({fillColor: colour((mean - range[0]) / span)},
          style)).bindTooltip(text('span', 'mean score ' + fmt(mean) + ' of ' + cnt[q] +
          ' cells · zoom in for each cell'), {sticky: true}).addTo(cellLayer);
      }
      timing.cells = {aggregated: true, drawn: m};
      return;
    }
    var b = map.getBounds().pad(0.2), drawn = 0;
    for (var r = 0; r < n && drawn < D.maxCells; r++) {
      if (D.agg && !b.contains([lat[r], lon[r]])) { continue; }
      drawn += 1;
      L.polygon(hexAt(X[r], Y[r], D.hex), L.extend({
        fillColor: colour((state.scores[r] - range[0]) / span)}, style))
        .bindTooltip(cellTip(r), {sticky: true}).addTo(cellLayer);
    }
    timing.cells = {aggregated: false, drawn: drawn};
  }
  var PX = D.agg ? b64(D.agg.x, Int32Array) : null, PY = D.agg ? b64(D.agg.y, Int32Array) : null;
  if (D.agg) { map.on('zoomend moveend', drawCells); }
  map.on('overlayadd', function (e) { if (e.layer === cellsGroup) { drawCells(); } });

  // ---- numbered markers, spread so none hides another at the current zoom
  var markers = [];
  function popupFor(r, rank) {
    if (D.popups[r] !== undefined && rank === baseRank[r]) { return D.popups[r]; }
    var box = document.createElement('div');
    box.className = 'sp-pop';
    box.appendChild(text('b', 'Site #' + rank));
    box.appendChild(document.createTextNode(' · ' + placeName(r)));
    box.appendChild(document.createElement('br'));
    box.appendChild(text('span', 'score ' + fmt(state.scores[r]) + ' (' +
      (baseRank[r] ? 'rank ' + baseRank[r] + ' in the study' : 'not in the study\'s top ' + D.k) + ')'));
    var ul = document.createElement('ul');
    for (var q = 0; q < C; q++) {
      var v = norm[q][r], below = 0;
      for (var j = 0; j < n; j++) { if (norm[q][j] < v) { below += 1; } }
      var pct = Math.round(100 * below / n);
      ul.appendChild(text('li', D.labels[q] + ': ' + (D.signs[q] > 0 ? 'higher' : 'more') +
        ' than at ' + pct + '% of candidate sites'));
    }
    box.appendChild(ul);
    box.appendChild(text('small', 'Walk counts and demand for this site: run the CLI with these weights.'));
    return box;
  }
  function declutter() {
    var placed = [];
    markers.forEach(function (mk) {
      var p = map.latLngToContainerPoint(mk.getLatLng()), off = [0, 0];
      var tries = [[0, 0]];
      for (var ring = 1; ring <= 3; ring++) {
        for (var a = 0; a < 8; a++) {
          tries.push([Math.round(27 * ring * Math.cos(a * Math.PI / 4)),
                      Math.round(27 * ring * Math.sin(a * Math.PI / 4))]);
        }
      }
      for (var t = 0; t < tries.length; t++) {
        var x = p.x + tries[t][0], y = p.y + tries[t][1], free = true;
        for (var q = 0; q < placed.length; q++) {
          if (Math.abs(placed[q][0] - x) < 27 && Math.abs(placed[q][1] - y) < 27) { free = false; break; }
        }
        if (free) { off = tries[t]; break; }
      }
      placed.push([p.x + off[0], p.y + off[1]]);
      mk.setIcon(L.divIcon({className: 'site-marker' + (off[0] || off[1] ? ' moved' : ''),
        html: String(mk.spRank), iconSize: [26, 26], iconAnchor: [13 - off[0], 13 - off[1]]}));
    });
  }
  function drawMarkers() {
    sitesGroup.clearLayers();
    markers = state.chosen.map(function (r, q) {
      var mk = L.marker([lat[r], lon[r]], {riseOnHover: true});
      mk.spRank = q + 1;
      mk.bindTooltip(text('span', 'Site #' + (q + 1) + ': ' + placeName(r) + ' · score ' +
                          fmt(state.scores[r])));
      mk.bindPopup(function () { return popupFor(r, q + 1); }, {maxWidth: 380});
      return mk.addTo(sitesGroup);
    });
    declutter();
  }
  map.on('zoomend', declutter);

  // ---- the panel
  var panel = document.getElementById('sp-whatif');
  var list = document.getElementById('whatif-ranking');
  var sliders = [], values = [];
  function share(q) {
    var t = 0;
    for (var j = 0; j < C; j++) { t += state.weights[j]; }
    return t > 0 ? Math.round(100 * state.weights[q] / t) + '%' : '–';
  }
  function showList() {
    list.textContent = '';
    state.chosen.forEach(function (r, q) {
      var li = document.createElement('li'), was = baseRank[r], move;
      li.setAttribute('data-site-id', ids[r]);
      li.appendChild(text('span', placeName(r), 'wi-name'));
      li.appendChild(text('span', fmt(state.scores[r]), 'wi-score'));
      if (!was) { move = text('span', 'new', 'wi-move up'); }
      else if (was === q + 1) { move = text('span', '=', 'wi-move'); }
      else if (was > q + 1) { move = text('span', '▲' + (was - q - 1), 'wi-move up'); }
      else { move = text('span', '▼' + (q + 1 - was), 'wi-move down'); }
      move.title = was ? 'rank ' + was + ' with the study\'s weights' : 'not in the study\'s top ' + D.k;
      li.appendChild(move);
      li.addEventListener('click', function () { markers[q].openPopup(); });
      list.appendChild(li);
    });
  }
  function cliLine() {
    var parts = ['siteplanner rank'];
    if (D.study) { parts.push(D.study); }
    D.cliOptions.forEach(function (o) { parts.push(o); });
    for (var q = 0; q < C; q++) { parts.push('--set criteria.' + D.names[q] + '.weight=' + state.weights[q]); }
    return parts.join(' ');
  }
  var timing = {first: null, last: null, runs: 0, cells: null, ids: ids, X: X, Y: Y};
  window.spWhatif = timing;
  function rerank() {
    var t0 = performance.now();
    state.scores = scoresFor(state.weights);
    if (D.live) { state.chosen = topK(state.scores); }
    state.rankOf = {};
    state.chosen.forEach(function (r, q) { state.rankOf[r] = q + 1; });
    showList();
    drawMarkers();
    drawCells();
    for (var q = 0; q < C; q++) { values[q].textContent = share(q); }
    document.getElementById('sp-cli').textContent = cliLine();
    var ms = performance.now() - t0;
    timing.last = ms;
    timing.runs += 1;
    if (timing.first === null) { timing.first = ms; }
  }
  function hashWeights() {
    var m = /(?:^#|&)weights=([^&]*)/.exec(location.hash), w = D.weights.slice();
    if (!m) { return w; }
    decodeURIComponent(m[1]).split(',').forEach(function (part) {
      var kv = part.split(':'), q = D.names.indexOf(kv[0]), v = parseFloat(kv[1]);
      if (q >= 0 && isFinite(v) && v >= 0) { w[q] = v; }
    });
    var t = 0;
    w.forEach(function (v) { t += v; });
    return t > 0 ? w : D.weights.slice();
  }
  function writeHash() {
    var parts = D.names.map(function (name, q) { return name + ':' + state.weights[q]; });
    history.replaceState(null, '', '#weights=' + parts.join(','));
  }
  function setSliders() {
    for (var q = 0; q < C; q++) { sliders[q].value = String(state.weights[q]); }
  }
  var table = document.getElementById('sp-sliders');
  D.names.forEach(function (name, q) {
    var row = document.createElement('div'), s = document.createElement('input');
    row.className = 'wi-row';
    row.appendChild(text('label', D.labels[q] + (D.signs[q] > 0 ? '' : ' (cost)')));
    s.type = 'range';
    s.min = '0';
    s.max = String(D.sliderMax);
    s.step = String(D.sliderStep);
    s.setAttribute('data-criterion', name);
    s.addEventListener('input', function () {
      state.weights[q] = parseFloat(s.value);
      writeHash();
      rerank();
    });
    row.appendChild(s);
    values.push(row.appendChild(text('span', '', 'wi-share')));
    sliders.push(s);
    table.appendChild(row);
  });
  document.getElementById('sp-reset').addEventListener('click', function () {
    state.weights = D.weights.slice();
    setSliders();
    history.replaceState(null, '', location.pathname + location.search);
    rerank();
  });
  window.addEventListener('hashchange', function () {
    state.weights = hashWeights();
    setSliders();
    rerank();
  });
  state.weights = hashWeights();
  setSliders();
  rerank();
  panel.classList.add('ready');
}
