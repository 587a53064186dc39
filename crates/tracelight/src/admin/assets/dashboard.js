'use strict';
// tracelight's admin dashboard. Every value from the logs is set as text (textContent), never
// as HTML; charts are SVG elements made with the DOM.
(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute('content');
  const $ = (id) => document.getElementById(id);
  let paused = false;
  let violations = 0;
  document.addEventListener('securitypolicyviolation', () => {
    violations += 1;
    document.body.dataset.cspViolations = String(violations);
  });

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function row(cells, numeric) {
    const tr = document.createElement('tr');
    cells.forEach((c, i) => {
      const td = c instanceof Node ? document.createElement('td') : el('td', c);
      if (c instanceof Node) td.appendChild(c);
      if (numeric && numeric.includes(i)) td.className = 'n';
      tr.appendChild(td);
    });
    return tr;
  }

  function head(names, numeric) {
    const tr = document.createElement('tr');
    names.forEach((n, i) => {
      const th = el('th', n);
      if (numeric && numeric.includes(i)) th.className = 'n';
      tr.appendChild(th);
    });
    const thead = document.createElement('thead');
    thead.appendChild(tr);
    return thead;
  }

  // A bar chart of `values` (`labels` for each bar's tooltip).
  function bars(values, labels, width, height, cls) {
    const s = document.createElementNS(SVG, 'svg');
    s.setAttribute('class', 'bars' + (cls ? ' ' + cls : ''));
    s.setAttribute('width', String(width));
    s.setAttribute('height', String(height));
    s.setAttribute('viewBox', `0 0 ${width} ${height}`);
    s.setAttribute('role', 'img');
    const max = Math.max(1, ...values);
    const w = width / Math.max(1, values.length);
    const base = document.createElementNS(SVG, 'line');
    base.setAttribute('x1', '0');
    base.setAttribute('x2', String(width));
    base.setAttribute('y1', String(height - 0.5));
    base.setAttribute('y2', String(height - 0.5));
    s.appendChild(base);
    values.forEach((v, i) => {
      if (!v) return;
      const h = Math.max(1, (v / max) * (height - 2));
      const r = document.createElementNS(SVG, 'rect');
      r.setAttribute('x', (i * w + 0.5).toFixed(1));
      r.setAttribute('y', (height - h).toFixed(1));
      r.setAttribute('width', Math.max(1, w - 1).toFixed(1));
      r.setAttribute('height', h.toFixed(1));
      const t = document.createElementNS(SVG, 'title');
      t.textContent = labels ? labels[i] : String(v);
      r.appendChild(t);
      s.appendChild(r);
    });
    return s;
  }

  function minuteLabels(values) {
    const n = values.length;
    return values.map((v, i) => `${v} in the minute ${n - 1 - i} min ago`);
  }

  function ms(x) {
    if (x === null || x === undefined) return '-';
    return x >= 1000 ? (x / 1000).toFixed(2) + ' s' : x.toFixed(x < 10 ? 2 : 1) + ' ms';
  }

  async function get(path) {
    const r = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (r.status === 401) {
      // The session ended: the sign-in form, once.
      paused = true;
      if (!window.sessionEnded) {
        window.sessionEnded = true;
        window.location.reload();
      }
      throw new Error('the session ended');
    }
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }

  function fill(id, nodes) {
    const box = $(id);
    box.replaceChildren(...nodes);
  }

  function renderErrors(e) {
    $('errors-total').textContent = `${e.total} errors`;
    if (!e.groups.length) return fill('errors-body', [el('p', 'No errors.', 'muted')]);
    const t = document.createElement('table');
    t.appendChild(head(['error', 'last hour, per minute', 'hour', 'total'], [2, 3]));
    const body = document.createElement('tbody');
    for (const g of e.groups) {
      const cell = document.createElement('div');
      cell.appendChild(el('div', g.message, 'msg'));
      cell.appendChild(el('div', `${g.error_type || ''} ${g.target} · last ${g.last_seen}`, 'muted'));
      if (g.sample) cell.appendChild(el('pre', JSON.stringify(g.sample, null, 1), 'sample'));
      const tr = row([cell, bars(g.per_minute, minuteLabels(g.per_minute), 180, 36, 'err'), g.last_hour, g.count], [2, 3]);
      tr.className = 'group';
      body.appendChild(tr);
    }
    t.appendChild(body);
    fill('errors-body', [t]);
  }

  function renderPerformance(p) {
    if (!p.operations.length) return fill('perf-body', [el('p', 'No spans timed yet.', 'muted')]);
    const t = document.createElement('table');
    t.appendChild(head(['operation', 'count', 'p50', 'p90', 'p99', 'max', 'latency'], [1, 2, 3, 4, 5]));
    const body = document.createElement('tbody');
    for (const o of p.operations) {
      // From the first bucket with a close to the last, empty ones between kept.
      const first = o.histogram.findIndex((b) => b.count > 0);
      const last = o.histogram.length - 1 - [...o.histogram].reverse().findIndex((b) => b.count > 0);
      const hist = first < 0 ? [] : o.histogram.slice(first, last + 1);
      const labels = hist.map((b) => (b.le_ms === null ? `${b.count} longer` : `${b.count} up to ${ms(b.le_ms)}`));
      const tr = row([o.operation, o.count, ms(o.p50_ms), ms(o.p90_ms), ms(o.p99_ms), ms(o.max_ms),
        bars(hist.map((b) => b.count), labels, 140, 30)], [1, 2, 3, 4, 5]);
      tr.className = 'operation';
      body.appendChild(tr);
    }
    t.appendChild(body);
    const nodes = [t];
    if (p.slow_requests.length) {
      nodes.push(el('h2', 'Slowest requests'));
      const s = document.createElement('table');
      s.appendChild(head(['at', 'operation', 'duration', 'request id'], [2]));
      const sb = document.createElement('tbody');
      for (const r of p.slow_requests.slice(0, 10)) {
        sb.appendChild(row([r.at, r.operation, ms(r.duration_ms), r.request_id || '-'], [2]));
      }
      s.appendChild(sb);
      nodes.push(s);
    }
    fill('perf-body', nodes);
  }

  function renderSecurity(s) {
    $('security-total').textContent = `${s.total} events`;
    if (!s.counts.length) return fill('security-body', [el('p', 'No security events.', 'muted')]);
    const t = document.createElement('table');
    t.appendChild(head(['event', 'last hour, per minute', 'total'], [2]));
    const body = document.createElement('tbody');
    for (const c of s.counts) {
      const tr = row([c.event, bars(c.per_minute, minuteLabels(c.per_minute), 180, 30, 'warn'), c.count], [2]);
      tr.className = 'security-type';
      body.appendChild(tr);
    }
    t.appendChild(body);
    const nodes = [t];
    if (s.recent.length) {
      nodes.push(el('h2', 'Latest'));
      for (const r of s.recent.slice(0, 5)) nodes.push(el('pre', JSON.stringify(r.line)));
    }
    fill('security-body', nodes);
  }

  function renderStats(st) {
    const wanted = {
      tracelight_stream_lines_total: 'written',
      tracelight_stream_dropped_total: 'dropped',
      tracelight_stream_lost_lines_total: 'lost',
      tracelight_stream_write_errors_total: 'write errors',
    };
    const streams = new Map();
    const exports = [];
    for (const m of st.metrics) {
      if (wanted[m.name]) {
        for (const p of m.points) {
          const s = streams.get(p.labels.stream) || {};
          s[wanted[m.name]] = p.value;
          streams.set(p.labels.stream, s);
        }
      } else if (m.name === 'tracelight_otel_export_items_total') {
        for (const p of m.points) exports.push([p.labels.signal, p.labels.outcome, p.value]);
      }
    }
    const cols = ['written', 'dropped', 'lost', 'write errors'];
    const t = document.createElement('table');
    t.appendChild(head(['stream', ...cols], [1, 2, 3, 4]));
    const body = document.createElement('tbody');
    for (const [name, s] of streams) {
      const tr = row([name, ...cols.map((c) => s[c] || 0)], [1, 2, 3, 4]);
      tr.className = 'stream';
      body.appendChild(tr);
    }
    t.appendChild(body);
    const nodes = [t];
    if (exports.length) {
      nodes.push(el('h2', 'OpenTelemetry export'));
      const e = document.createElement('table');
      e.appendChild(head(['signal', 'outcome', 'items'], [2]));
      const eb = document.createElement('tbody');
      for (const x of exports) eb.appendChild(row(x, [2]));
      e.appendChild(eb);
      nodes.push(e);
    }
    fill('streams-body', nodes);
  }

  function renderLevel(l) {
    $('level-filter').textContent = l.filter;
    const parts = [`since ${l.since}`];
    if (l.reverts_at) parts.push(`until ${l.reverts_at}, then ${l.reverts_to}`);
    else if (l.filter !== l.initial) parts.push(`at start ${l.initial}`);
    $('level-meta').textContent = parts.join(' · ');
  }

  async function refresh() {
    if (paused) return;
    try {
      const [errors, perf, security, stats, level] = await Promise.all([
        get('errors?limit=20'), get('performance?limit=20'), get('security?limit=20'),
        get('stats'), get('log-level'),
      ]);
      renderErrors(errors);
      renderPerformance(perf);
      renderSecurity(security);
      renderStats(stats);
      renderLevel(level);
      $('updated').textContent = `updated ${new Date().toISOString()}`;
      $('status').textContent = '';
      document.body.dataset.ready = String(Number(document.body.dataset.ready || 0) + 1);
    } catch (e) {
      $('status').textContent = `refresh failed: ${e.message}`;
    }
  }

  $('pause').addEventListener('click', () => {
    paused = !paused;
    $('pause').textContent = paused ? 'Resume' : 'Pause';
    if (!paused) refresh();
  });

  $('level-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const filter = $('level-input').value.trim();
    const duration = $('level-for').value.trim();
    const body = filter === '' ? { reset: true } : { filter };
    if (filter !== '' && duration !== '') body.for = duration;
    const r = await fetch('log-level', {
      method: 'PUT',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body),
    });
    const answer = await r.json().catch(() => ({}));
    $('level-result').textContent = r.ok ? `now ${answer.filter}` : `refused: ${answer.error || r.status}`;
    $('level-result').className = r.ok ? 'muted' : 'bad';
    if (r.ok) renderLevel(answer);
  });

  refresh();
  setInterval(refresh, 5000);
})();
