'use strict';
// The report: built from the JSON in #data. Every value from the logs is set as text
// (textContent), never as HTML; the charts are SVG elements made with the DOM.
(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'other'];
  const problems = [];
  window.addEventListener('error', (e) => { problems.push(String(e.message)); document.body.dataset.problems = String(problems.length); });
  document.addEventListener('securitypolicyviolation', () => { problems.push('csp'); document.body.dataset.problems = String(problems.length); });
  const data = JSON.parse(document.getElementById('data').textContent);
  const main = document.getElementById('report');

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }
  function table(headers, rows, numeric) {
    const t = document.createElement('table');
    const thead = document.createElement('thead');
    const htr = document.createElement('tr');
    headers.forEach((h, i) => { const th = el('th', h); if (numeric.includes(i)) th.className = 'n'; htr.appendChild(th); });
    thead.appendChild(htr);
    t.appendChild(thead);
    const body = document.createElement('tbody');
    for (const r of rows) {
      const tr = document.createElement('tr');
      if (r.cls) tr.className = r.cls;
      r.cells.forEach((c, i) => {
        const td = document.createElement('td');
        if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? '-' : String(c);
        if (numeric.includes(i)) td.className = 'n';
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
    t.appendChild(body);
    return t;
  }
  function section(id, title) {
    const s = el('section');
    s.id = id;
    s.appendChild(el('h2', title));
    main.appendChild(s);
    return s;
  }
  function ms(x) {
    if (x === null || x === undefined || Number.isNaN(x)) return '-';
    return x >= 1000 ? (x / 1000).toFixed(2) + ' s' : x.toFixed(x < 10 ? 2 : 1) + ' ms';
  }
  function bucketLabel(i) {
    const t = new Date((data.bucket_start + i * data.bucket_us) / 1000);
    return t.toISOString().replace('.000Z', 'Z');
  }
  function bars(values, width, height, cls) {
    const s = svgEl('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
    const max = Math.max(1, ...values);
    const w = width / Math.max(1, values.length);
    s.appendChild(svgEl('line', { x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5, class: 'grid' }));
    values.forEach((v, i) => {
      if (!v) return;
      const h = Math.max(1, (v / max) * (height - 2));
      const r = svgEl('rect', { x: (i * w).toFixed(1), y: (height - h).toFixed(1), width: Math.max(1, w - 1).toFixed(1), height: h.toFixed(1), class: cls });
      r.appendChild(Object.assign(svgEl('title'), { textContent: `${v} at ${bucketLabel(i)}` }));
      s.appendChild(r);
    });
    return s;
  }

  // Summary.
  const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const parts = [`${count(data.total_lines, 'line', 'lines')} from ${count(data.files, 'file', 'files')}`];
  if (data.from) parts.push(`${data.from} → ${data.to}`);
  if (data.filters.length) parts.push(data.filters.join(', '));
  parts.push(`generated ${data.generated_at}`);
  document.getElementById('summary').textContent = parts.join(' · ');

  // Events by level over time: stacked bars.
  {
    const s = section('levels', 'Events by level over time');
    if (!data.from) s.appendChild(el('p', 'No lines with a readable time.', 'muted'));
  }
  if (data.from) {
    const s = document.getElementById('levels');
    const width = 1100, height = 160;
    const svg = svgEl('svg', { width: '100%', height, viewBox: `0 0 ${width} ${height + 16}`, preserveAspectRatio: 'none', role: 'img' });
    const totals = new Array(data.buckets).fill(0);
    for (const l of LEVELS) (data.levels[l] || []).forEach((v, i) => { totals[i] += v; });
    const max = Math.max(1, ...totals);
    const w = width / Math.max(1, data.buckets);
    for (let i = 0; i < data.buckets; i++) {
      let y = height;
      for (const l of LEVELS) {
        const v = (data.levels[l] || [])[i] || 0;
        if (!v) continue;
        const h = (v / max) * (height - 4);
        y -= h;
        const r = svgEl('rect', { x: (i * w).toFixed(1), y: y.toFixed(1), width: Math.max(1, w - 1).toFixed(1), height: Math.max(0.5, h).toFixed(1), class: `lv-${l}` });
        r.appendChild(Object.assign(svgEl('title'), { textContent: `${v} ${l} at ${bucketLabel(i)}` }));
        svg.appendChild(r);
      }
    }
    svg.appendChild(svgEl('line', { x1: 0, x2: width, y1: height + 0.5, y2: height + 0.5, class: 'grid' }));
    const first = svgEl('text', { x: 0, y: height + 13 });
    first.textContent = bucketLabel(0);
    svg.appendChild(first);
    const lastT = svgEl('text', { x: width, y: height + 13, 'text-anchor': 'end' });
    lastT.textContent = bucketLabel(data.buckets - 1);
    svg.appendChild(lastT);
    s.appendChild(svg);
    const legend = el('p', null, 'legend');
    for (const l of LEVELS) {
      const n = (data.levels[l] || []).reduce((a, b) => a + b, 0);
      if (!n && l === 'other') continue;
      const span = el('span');
      span.appendChild(el('span', null, `swatch lv-${l}`));
      span.appendChild(document.createTextNode(`${l} ${n}`));
      legend.appendChild(span);
    }
    legend.appendChild(el('span', `one bar per ${data.bucket_us / 1e6} s`, 'muted'));
    s.appendChild(legend);
  }

  // Error groups.
  {
    const s = section('errors', `Errors: ${data.errors.length} groups`);
    if (!data.errors.length) s.appendChild(el('p', 'No ERROR lines.', 'muted'));
    else {
      s.appendChild(table(['error', 'over time', 'count', 'suppressed'], data.errors.map((e) => {
        const cell = el('div');
        cell.appendChild(el('div', e.message, 'msg'));
        cell.appendChild(el('div', `${e.target} · ${e.services.join(', ')} · ${e.first_seen} → ${e.last_seen}${e.fingerprint ? ' · ' + e.fingerprint : ''}`, 'muted'));
        if (e.sample) cell.appendChild(el('pre', JSON.stringify(e.sample, null, 1)));
        return { cls: 'group', cells: [cell, bars(e.per_bucket, 240, 40, 'lv-ERROR'), e.count, e.suppressed] };
      }), [2, 3]));
    }
  }

  // Latency by route and by operation.
  {
    const s = section('latency', 'Latency');
    for (const [kind, title] of [['route', 'By route'], ['operation', 'By operation']]) {
      const ops = data.operations.filter((o) => o.kind === kind);
      if (!ops.length) continue;
      s.appendChild(el('h3', title));
      s.appendChild(table([kind, 'count', 'p50', 'p90', 'p99', 'max'],
        ops.map((o) => ({ cls: 'operation', cells: [o.operation, o.count, ms(o.p50), ms(o.p90), ms(o.p99), ms(o.max)] })), [1, 2, 3, 4, 5]));
    }
    if (!data.operations.length) s.appendChild(el('p', 'No lines with duration_ms.', 'muted'));
  }

  // The slowest requests, each linked to its timeline.
  {
    const s = section('slowest', 'Slowest');
    if (!data.slowest.length) s.appendChild(el('p', 'No lines with duration_ms.', 'muted'));
    else {
      s.appendChild(table(['duration', 'at', 'service', 'operation', 'request'], data.slowest.map((x) => {
        let req = x.request_id;
        if (x.timeline !== null && x.timeline !== undefined) {
          req = el('a', x.request_id);
          req.href = `#timeline-${x.timeline}`;
        }
        return { cls: 'slow', cells: [ms(x.duration_ms), x.timestamp, x.service, x.operation, req] };
      }), [0]));
    }
  }

  // Timelines: a waterfall across services, then the lines.
  data.timelines.forEach((t, n) => {
    const s = section(`timeline-${n}`, `Request ${t.request_id}`);
    s.classList.add('timeline');
    s.appendChild(el('p', `${t.lines.length} lines from ${t.services.length} services (${t.services.join(', ')}), ${t.start}, ${ms(t.duration_ms)}`, 'muted'));
    const width = 1100, lane = 22, left = 150;
    const height = lane * t.services.length + 8;
    const svg = svgEl('svg', { width: '100%', height, viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'waterfall' });
    const scale = (width - left - 10) / Math.max(0.001, t.duration_ms);
    t.services.forEach((svc, i) => {
      const y = 4 + i * lane;
      const mine = t.lines.filter((l) => l.service === svc);
      const from = Math.min(...mine.map((l) => l.offset_ms));
      const to = Math.max(...mine.map((l) => l.offset_ms));
      const label = svgEl('text', { x: 0, y: y + 15 });
      label.textContent = svc || '(no service)';
      svg.appendChild(label);
      const bar = svgEl('rect', { x: (left + from * scale).toFixed(1), y: y + 3, width: Math.max(2, (to - from) * scale).toFixed(1), height: lane - 6, rx: 3, class: 'lane' });
      bar.appendChild(Object.assign(svgEl('title'), { textContent: `${svc}: +${ms(from)} → +${ms(to)}` }));
      svg.appendChild(bar);
      for (const l of mine) {
        const tick = svgEl('rect', { x: (left + l.offset_ms * scale - 1).toFixed(1), y: y + 1, width: 3, height: lane - 2, class: `lv-${LEVELS.includes(l.level) ? l.level : 'other'}` });
        tick.appendChild(Object.assign(svgEl('title'), { textContent: `+${ms(l.offset_ms)} ${l.level} ${l.message}` }));
        svg.appendChild(tick);
      }
    });
    s.appendChild(svg);
    s.appendChild(table(['offset', 'service', 'level', 'span', 'message'], t.lines.map((l) => ({
      cls: l.replayed ? 'line replayed' : 'line',
      cells: [`+${ms(l.offset_ms)}`, l.service, l.level + (l.replayed ? ' ↺' : ''), l.span, l.error ? `${l.message}: ${l.error}` : l.message],
    })), [0]));
  });

  document.body.dataset.rendered = 'true';
})();
