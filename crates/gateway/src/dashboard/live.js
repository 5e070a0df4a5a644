// Live updates (progressive enhancement): surges announced while the page is open are added
// on top, with the same filter as the list. Without JavaScript the page is complete as sent.
(() => {
  const list = document.getElementById('surges');
  const status = document.getElementById('live');
  if (!list || !status || !window.EventSource) return;
  status.textContent = 'Connecting to live updates…';
  const es = new EventSource(list.dataset.stream);
  es.onopen = () => { status.textContent = 'Live: new surges appear at the top.'; status.className = 'on'; };
  es.onerror = () => { status.textContent = 'Live updates interrupted; reconnecting…'; status.className = ''; };
  es.addEventListener('surge', (m) => {
    let e;
    try { e = JSON.parse(m.data); } catch (_) { return; }
    for (const li of list.children) { if (li.dataset.id === e.id) return; }
    const empty = list.querySelector('li.empty');
    if (empty) empty.remove();
    const li = document.createElement('li');
    li.className = e.severity + ' new';
    li.dataset.id = e.id;
    const badge = document.createElement('span');
    badge.className = 'badge ' + e.severity;
    badge.textContent = e.severity;
    const a = document.createElement('a');
    a.className = 'series';
    a.href = '/series/' + [e.source, e.country, e.category].map(encodeURIComponent).join('/');
    a.textContent = e.source + '/' + e.country + '/' + e.category;
    const b = document.createElement('b');
    b.textContent = e.period;
    const p = document.createElement('p');
    p.textContent = e.explanation;
    li.append(badge, ' ', a, ' ', b);
    if (e.direction === 'fall') {
      const fall = document.createElement('span');
      fall.className = 'label fall';
      fall.textContent = 'fall';
      li.append(' ', fall);
    }
    li.append(p);
    list.prepend(li);
  });
})();
