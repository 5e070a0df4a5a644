//! The dashboard at `/`: the latest surges with their explanations, updated live.
//! Server-rendered HTML; a few lines of JavaScript only for the live updates.

use axum::extract::State;
use axum::response::Html;

use crate::AppState;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) async fn page(State(state): State<AppState>) -> Html<String> {
    let mut rows = String::new();
    for entry in state.surges.after(0).into_iter().rev().take(200) {
        let e = &entry.event;
        rows.push_str(&format!(
            "<li class=\"{sev}\"><span class=\"sev\">{sev}</span> <a href=\"/v1/series/{src}/{cty}/{cat}\">{src}/{cty}/{cat}</a> <b>{period}</b><p>{text}</p></li>\n",
            sev = e.severity,
            src = escape(&e.source),
            cty = e.country,
            cat = escape(&e.category),
            period = e.period,
            text = escape(&e.explanation),
        ));
    }
    if rows.is_empty() {
        rows.push_str("<li class=\"empty\">No surges yet. Ingest a release: <code>borderwatch import FILE</code>.</li>");
    }
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>borderwatch — surges</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; color: #222; }}
h1 {{ font-size: 1.4rem; }}
ul {{ list-style: none; padding: 0; }}
li {{ border-left: 6px solid #999; padding: .5rem .8rem; margin: .6rem 0; background: #f7f7f7; }}
li.critical {{ border-color: #b00020; }} li.high {{ border-color: #e65100; }}
li.medium {{ border-color: #f9a825; }} li.low {{ border-color: #558b2f; }}
.sev {{ text-transform: uppercase; font-size: .75rem; font-weight: bold; }}
p {{ margin: .3rem 0 0; }}
</style></head>
<body>
<h1>borderwatch — latest surges</h1>
<p>API: <a href="/v1/surges">/v1/surges</a> · <a href="/v1/series">/v1/series</a> · live: <code>/v1/surges/stream</code></p>
<ul id="surges">
{rows}</ul>
<script>
// Live updates: new surges are added on top as they are announced.
const list = document.getElementById('surges');
const es = new EventSource('/v1/surges/stream');
es.addEventListener('surge', (m) => {{
  const e = JSON.parse(m.data);
  const li = document.createElement('li');
  li.className = e.severity;
  li.innerHTML = '<span class="sev"></span> <b></b><p></p>';
  li.querySelector('.sev').textContent = e.severity;
  li.querySelector('b').textContent = e.source + '/' + e.country + '/' + e.category + ' ' + e.period;
  li.querySelector('p').textContent = e.explanation;
  list.prepend(li);
}});
</script>
</body></html>
"#
    ))
}
