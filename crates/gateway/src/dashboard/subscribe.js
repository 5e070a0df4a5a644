// The subscribe form: the API takes JSON, so this sends the form's fields as the body of
// POST /v1/subscriptions. The API token, when typed in, goes with this one request only.
(() => {
  const form = document.getElementById('subscribe-form');
  const out = document.getElementById('subscribe-result');
  if (!form || !out || !window.fetch) return;
  form.hidden = false;
  const list = (v) => String(v || '').split(',').map((s) => s.trim()).filter(Boolean);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = {
      filter: {
        countries: list(f.get('countries')),
        categories: list(f.get('categories')),
        sources: list(f.get('sources')),
        min_severity: f.get('min_severity'),
      },
      webhook: { url: f.get('url'), secret: f.get('secret') },
      format: f.get('format'),
    };
    const headers = { 'Content-Type': 'application/json' };
    const token = String(f.get('token') || '').trim();
    if (token) headers.Authorization = 'Bearer ' + token;
    out.className = '';
    out.textContent = 'Sending…';
    try {
      const r = await fetch('/v1/subscriptions', { method: 'POST', headers, body: JSON.stringify(body) });
      const answer = await r.json().catch(() => null);
      if (r.ok && answer && answer.id) {
        out.textContent = 'Subscribed: ' + answer.id + ' (DELETE /v1/subscriptions/' + answer.id + ' ends it).';
        form.querySelector('[name=secret]').value = '';
        form.querySelector('[name=token]').value = '';
      } else {
        out.className = 'error';
        out.textContent = answer && answer.error ? answer.error.message : 'The gateway answered ' + r.status + '.';
      }
    } catch (e) {
      out.className = 'error';
      out.textContent = 'Could not reach the gateway: ' + e;
    }
  });
})();
