// The dashboard's only stylesheet and script, served from /admin/assets/ so
// the Content-Security-Policy can forbid every inline style and script. No
// web fonts, no CDN: a self-hosted install may have no internet.

const bars = Array.from({ length: 21 }, (_, i) => `.bar.b${i}{height:${i * 5}%}`).join('')

export const CSS = `
:root{--fg:#1d232b;--muted:#5d6875;--line:#dde2e8;--bg:#f6f7f9;--card:#fff;--accent:#0b63c9;--ok:#1a7f37;--warn:#9a6700;--bad:#c62828}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:24px;padding:10px 24px;background:#17202b;color:#fff}
header a{color:#d7e3f2;text-decoration:none}header a:hover,header a.on{color:#fff}
header .brand{font-weight:700;font-size:16px;color:#fff}
header nav{display:flex;gap:18px;flex:1}
header form{margin:0}header button{background:none;border:1px solid #51606f;color:#d7e3f2}
main{padding:20px 24px;max-width:1280px}
h1{font-size:20px;margin:4px 0 16px}h2{font-size:15px;margin:24px 0 8px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:12px 14px}
.card h2{margin-top:0}
ul.runs{margin:6px 0;padding-left:18px}
table{border-collapse:collapse;width:100%;background:var(--card)}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
tr.row:hover td{background:#f0f5fc}
a{color:var(--accent)}
td.mono,td a.mono{white-space:nowrap}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#0f1720;color:#e6edf3;padding:12px;border-radius:6px;overflow:auto;max-height:520px}
pre.wrap{white-space:pre-wrap;word-break:break-all}
.muted{color:var(--muted)}.small{font-size:12px}
.pill{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;border:1px solid var(--line);background:#fff;margin:0 4px 2px 0;white-space:nowrap}
.pill.delivered,.pill.verified,.pill.ok{color:var(--ok);border-color:#b7dfc2;background:#effaf2}
.pill.pending,.pill.unchecked,.pill.warn{color:var(--warn);border-color:#ecd9a4;background:#fff8e5}
.pill.dead,.pill.unverified,.pill.bad{color:var(--bad);border-color:#f1c0c0;background:#fdf0f0}
.error{color:var(--bad)}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin-bottom:14px;background:var(--card);border:1px solid var(--line);border-radius:6px;padding:10px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:2px}
input,select,button{font:inherit;padding:4px 8px;border:1px solid #c4ccd5;border-radius:4px;background:#fff;color:var(--fg)}
button{cursor:pointer}button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
button.danger{color:var(--bad);border-color:#e3a3a3}
form.inline{display:inline;margin:0}
.flash{background:#effaf2;border:1px solid #b7dfc2;padding:8px 12px;border-radius:6px;margin-bottom:14px}
.banner{margin:0;padding:10px 16px;background:#fdf0f0;border-bottom:2px solid var(--bad);color:var(--bad);font-weight:600}
dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dl.fields dt{color:var(--muted)}dl.fields dd{margin:0;word-break:break-all}
.chart{display:flex;align-items:flex-end;gap:3px;height:120px;padding-top:6px;border-bottom:1px solid var(--line)}
.chart .col{flex:1;height:100%;display:flex;flex-direction:column;justify-content:flex-end;align-items:center}
.bar{width:100%;background:var(--accent);border-radius:2px 2px 0 0;min-height:1px}
${bars}
.chart .n{font-size:10px;color:var(--muted)}
.axis{display:flex;gap:3px}.axis span{flex:1;font-size:10px;color:var(--muted);text-align:center}
.login{max-width:360px;margin:80px auto}.login input{width:100%;margin:6px 0 12px}
.pager{margin-top:12px}
`

// Pages waiting on pending deliveries reload themselves; bulk actions ask first.
export const JS = `
document.addEventListener('submit', function (e) {
  var message = e.target.getAttribute('data-confirm')
  if (message && !window.confirm(message)) e.preventDefault()
})
var seconds = Number(document.body.getAttribute('data-refresh'))
if (seconds > 0) setTimeout(function () { window.location.reload() }, seconds * 1000)
`
