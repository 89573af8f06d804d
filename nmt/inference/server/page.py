"""The page at GET / of nmt.serve: try the model in a browser. Plain HTML and JavaScript served
as one string (no build step, no files to find at run time); it calls POST /translate with
"attention": true and draws the n-best list and the attention heatmap of the best translation
(one row per target piece, one column per source piece; the end-of-sentence row last). A server
of several pairs offers them in a list (those through English included)."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nmt: try the model</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
  textarea { width: 100%; font-size: 1.1rem; padding: .5rem; box-sizing: border-box; }
  .controls { margin: .5rem 0 1rem; display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
  button { font-size: 1rem; padding: .4rem 1.2rem; }
  #translation { font-size: 1.3rem; font-weight: 600; min-height: 1.6rem; }
  #error { color: #b00020; }
  #nbest li { margin: .15rem 0; }
  .score { color: #777; font-size: .85rem; margin-left: .5rem; }
  #heatmap { border-collapse: collapse; margin-top: .5rem; font-size: .85rem; }
  #heatmap th { font-weight: normal; padding: 2px 4px; white-space: nowrap; }
  #heatmap thead th { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; }
  #heatmap td { width: 1.6rem; height: 1.6rem; border: 1px solid #eee; }
  .muted { color: #777; font-size: .9rem; }
</style>
</head>
<body>
<h1>Try the model</h1>
<p class="muted"><span id="pair"></span> <select id="pairs" hidden></select></p>
<textarea id="source" rows="3" placeholder="A sentence to translate"></textarea>
<div class="controls">
  <button id="translate">Translate</button>
  <label>beam <input id="beam" type="number" min="1" max="16" value="5" style="width:3.5rem"></label>
  <label>n-best <input id="nbest-size" type="number" min="1" max="16" value="3" style="width:3.5rem"></label>
  <span id="status" class="muted"></span>
</div>
<div id="error"></div>
<div id="translation"></div>
<p class="muted" id="about"></p>
<h2>Alternatives</h2>
<ol id="nbest"></ol>
<h2>Attention</h2>
<p class="muted">Rows: target pieces of the best translation; columns: source pieces; darker = more weight.</p>
<table id="heatmap"></table>
<script>
const $ = (id) => document.getElementById(id);

let choice = null;  // [source, target]; null: the server's first pair
fetch("languages").then((r) => r.json()).then((langs) => {
  const names = Object.fromEntries(langs.map((l) => [l.code, l.name]));
  const pairs = langs.flatMap((l) => l.targets.map((t) => [l.code, t]));
  const label = (p) => names[p[0]] + " \\u2192 " + names[p[1]];
  if (!pairs.length) return;
  choice = pairs[0];
  $("pair").textContent = label(choice);
  if (pairs.length > 1) {  // several pairs (some through English): choose one
    const select = $("pairs");
    for (const p of pairs) {
      const option = cell("option", label(p));
      option.value = p.join("|");
      select.appendChild(option);
    }
    select.hidden = false;
    $("pair").hidden = true;
    select.addEventListener("change", () => { choice = select.value.split("|"); $("pair").textContent = label(choice); });
  }
}).catch(() => {});

function cell(tag, text) {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  return el;
}

function drawHeatmap(t) {
  const table = $("heatmap");
  table.replaceChildren();
  const head = cell("thead"), top = cell("tr");
  top.appendChild(cell("th"));
  for (const piece of t.source_pieces) top.appendChild(cell("th", piece));
  head.appendChild(top);
  table.appendChild(head);
  const body = cell("tbody");
  t.attention.forEach((row, i) => {
    const isEos = i >= t.target_pieces.length;
    const tr = cell("tr");
    tr.className = isEos ? "eos" : "piece";
    tr.appendChild(cell("th", isEos ? "</s>" : t.target_pieces[i]));
    for (const w of row) {
      const td = cell("td");
      td.style.background = "rgba(20, 60, 160, " + w.toFixed(3) + ")";
      td.title = w.toFixed(3);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  });
  table.appendChild(body);
}

async function translate() {
  const text = $("source").value.trim();
  $("error").textContent = "";
  if (!text) return;
  const beam = Math.max(1, parseInt($("beam").value || "5", 10));
  const nBest = Math.min(beam, Math.max(1, parseInt($("nbest-size").value || "1", 10)));
  $("status").textContent = "translating\\u2026";
  try {
    const r = await fetch("translate", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({text: text, beam_size: beam, n_best: nBest, attention: true,
                            ...(choice ? {source: choice[0], target: choice[1]} : {})}),
    });
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || r.statusText);
    const t = data.translations[0];
    $("translation").textContent = t.text;
    $("about").textContent = [t.pivot ? "through " + t.pivot : "",
                              t.confidence != null ? "confidence " + t.confidence.toFixed(2) : ""].filter(Boolean).join("; ");
    const list = $("nbest");
    list.replaceChildren();
    for (const alt of (t.n_best || [{text: t.text, score: t.score}])) {
      const li = cell("li", alt.text);
      li.appendChild(cell("span", alt.score.toFixed(3))).className = "score";
      list.appendChild(li);
    }
    if (t.attention) drawHeatmap(t); else $("heatmap").replaceChildren();  // a paragraph: per sentence only
    $("status").textContent = "";
  } catch (err) {
    $("status").textContent = "";
    $("error").textContent = String(err.message || err);
  }
}

$("translate").addEventListener("click", translate);
$("source").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) translate(); });
</script>
</body>
</html>
"""
