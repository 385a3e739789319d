// The report page: plots from the embedded figures, the trace browser, the tree viewer.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  window.reportReady = false;
  window.plotsDrawn = {};

  // summary and per-run table
  $("summary").textContent = `${DATA.total_traces} traces in ${DATA.warehouse}` +
    (DATA.run ? `, run ${DATA.run}` : ", all runs");
  // An eval's traces are benchmark answers, never kept: its row gives its score instead of
  // solved / traces / kept (zeros that read as a failed data run).
  const pct = (v) => (100 * v).toFixed(1) + "%";
  const evalCell = (s) => {
    const e = s.evals.find((x) => x.subset === "all" && x.metric === "pass@1") || s.evals[0];
    return '<td colspan="3" class="eval-score">eval' + (!e ? ", not scored yet" :
      `: ${esc(e.metric)} ${pct(e.value)} [${pct(e.ci_low)}, ${pct(e.ci_high)}], n=${e.n}`) + "</td>";
  };
  const rows = DATA.stats.filter((s) => s.method !== "-").map((s) =>
    `<tr class="kind-${esc(s.kind)}"><td>${esc(s.run_id)} ${esc(s.recipe_name)}</td><td>${esc(s.method)}</td>` +
    `<td>${s.attempted}</td>` + (s.kind === "eval" ? evalCell(s) :
      `<td>${s.solved}</td><td>${s.generated}</td><td>${s.kept}</td>`) +
    `<td>${s.tokens_in == null ? "" : s.tokens_in}</td><td>${s.tokens_out == null ? "" : s.tokens_out}</td>` +
    `<td>${s.cost == null ? "" : "$" + s.cost.toFixed(4)}</td></tr>`);
  $("stats").innerHTML = '<table class="stats" id="runs-table"><tr><th>run</th><th>method</th><th>problems</th>' +
    "<th>solved</th><th>traces</th><th>kept</th><th>tokens in</th><th>tokens out</th><th>cost</th></tr>" +
    rows.join("") + "</table>" +
    // the answer filter's LLM judge: who decided, and where both did, how often they agreed
    DATA.stats.filter((s) => s.judge && Object.keys(s.judge).length).map((s) => {
      const j = s.judge;
      return `<p class="note judge-agreement">${esc(s.run_id)} answer judge: rules decided ` +
        `${j.by_rule}, the judge ${j.by_judge} (${j.unparsed} unparsed, ${j.errors} errors)` +
        (j.both_decided ? `; both decided ${j.both_decided}: agree ${j.agree} (${pct(j.agreement)})` : "") +
        "</p>";
    }).join("");

  // evals: one row per model, benchmark, subset and metric
  $("evals").innerHTML = !DATA.evals.length
    ? '<p class="note">no evals in this warehouse (reasonfactory eval)</p>'
    : '<table class="stats" id="evals-table"><tr><th>model</th><th>benchmark</th><th>subset</th>' +
      "<th>metric</th><th>value</th><th>95% interval</th><th>n</th><th>run</th></tr>" +
      DATA.evals.map((e) => `<tr><td>${esc(e.model)}</td><td>${esc(e.benchmark)}</td>` +
        `<td>${esc(e.subset)}</td><td>${esc(e.metric)}</td><td>${pct(e.value)}</td>` +
        `<td>[${pct(e.ci_low)}, ${pct(e.ci_high)}]</td><td>${e.n}</td><td>${esc(e.run_id)}</td></tr>`)
        .join("") + "</table>";

  // plots
  for (const [name, fig] of Object.entries(DATA.figures)) {
    const div = $("plot-" + name);
    if (!fig.data.length) {
      div.innerHTML = `<div class="empty">${esc(fig.layout.title.text)}: no data in this warehouse</div>`;
      window.plotsDrawn[name] = "empty";
      continue;
    }
    Plotly.newPlot(div, fig.data, fig.layout, { responsive: true, displaylogo: false })
      .then(() => { window.plotsDrawn[name] = "drawn"; });
  }

  // trace browser
  const traces = DATA.traces;
  $("sample-note").textContent = `Showing a sample: ${traces.length} of ${DATA.total_traces} ` +
    `traces (at most ${DATA.sample_per_group} per method and status, chosen by hash of the ` +
    `trace id; texts cut at ${DATA.thought_chars} characters). Plots count every trace.`;
  const distinct = (key) => [...new Set(traces.map((t) => t[key]).filter((v) => v != null))].sort();
  const fill = (id, label, values) => {
    $(id).innerHTML = `<option value="">${label}: all</option>` +
      values.map((v) => `<option value="${esc(v)}">${esc(v)}</option>`).join("");
  };
  fill("f-run", "run", distinct("run_id"));
  fill("f-method", "method", distinct("method"));
  fill("f-status", "status", distinct("status"));
  fill("f-reason", "reason", distinct("reason"));
  for (const t of traces) {
    t._text = [t.trace_id, t.question, t.thought, t.response, t.predicted].join("\n").toLowerCase();
  }

  function listTraces() {
    const f = { run_id: $("f-run").value, method: $("f-method").value,
      status: $("f-status").value, reason: $("f-reason").value };
    const q = $("search").value.trim().toLowerCase();
    const shown = traces.filter((t) => Object.entries(f).every(([k, v]) => !v || t[k] === v) &&
      (!q || t._text.includes(q)));
    $("count").textContent = `${shown.length} shown`;
    $("trace-list").innerHTML = shown.slice(0, 500).map((t) =>
      `<div class="trace-item" data-id="${esc(t.trace_id)}"><b>${esc(t.method)}</b> ` +
      `<span class="${esc(t.status)}">${esc(t.status)}${t.reason ? " " + esc(t.reason) : ""}</span> ` +
      `${esc((t.question || "").slice(0, 90))}</div>`).join("");
  }
  ["f-run", "f-method", "f-status", "f-reason"].forEach((id) => $(id).addEventListener("change", listTraces));
  $("search").addEventListener("input", listTraces);
  $("trace-list").addEventListener("click", (ev) => {
    const item = ev.target.closest(".trace-item");
    if (!item) return;
    document.querySelectorAll(".trace-item.active").forEach((e) => e.classList.remove("active"));
    item.classList.add("active");
    showTrace(traces.find((t) => t.trace_id === item.dataset.id));
  });

  // Mark `claim` inside already-escaped html once.
  const markClaim = (htmlText, claim) => {
    if (!claim) return htmlText;
    const c = esc(claim);
    const i = htmlText.indexOf(c);
    return i < 0 ? htmlText : htmlText.slice(0, i) + `<mark class="claim">${c}</mark>` + htmlText.slice(i + c.length);
  };

  // The thought as steps (blank-line separated); journey parts coloured by their offsets
  // (code points, as Python counts them).
  function thoughtHtml(t) {
    const chars = Array.from(t.thought || "");
    const parts = [];
    for (const e of t.journey) {
      for (const kind of ["error", "feedback", "backtrack", "correction"]) {
        const s = e[kind + "_start"], end = e[kind + "_end"];
        if (s != null && end != null && end > s) parts.push({ s, end, kind, claim: kind === "error" ? (e.written || e.wrong_claim) : null });
      }
    }
    parts.sort((a, b) => a.s - b.s);
    let out = "", pos = 0;
    for (const p of parts) {
      if (p.s < pos) continue;
      out += esc(chars.slice(pos, p.s).join(""));
      out += `<span class="j-${p.kind}">${markClaim(esc(chars.slice(p.s, p.end).join("")), p.claim)}</span>`;
      pos = p.end;
    }
    out += esc(chars.slice(pos).join(""));
    // split into steps on blank lines outside tags is enough here: spans never hold "\n\n"
    // across a part boundary in a way that matters for display
    return out.split(/\n\n/).map((s, i) => `<div class="step"><span class="n">step ${i + 1}</span>${s}</div>`).join("");
  }

  function showTrace(t) {
    const verdicts = Object.entries(t.verdicts).map(([k, v]) => `${esc(k)}: ${esc(v)}`).join(", ");
    $("trace-detail").innerHTML =
      `<div><b>${esc(t.trace_id)}</b> ${esc(t.method)} run ${esc(t.run_id)} · ` +
      `<span class="${esc(t.status)}">${esc(t.status)} ${esc(t.reason || "")}</span> · ` +
      `predicted ${esc(t.predicted)} · gold ${esc(t.gold)} · ${t.n_tokens == null ? "" : t.n_tokens + " tokens"}` +
      (t.score == null ? "" : ` · score ${Number(t.score).toFixed(3)}`) + `</div>` +
      `<div class="note">verdicts: ${verdicts || "none"}${t.journey.length ? ` · ${t.journey.length} detour(s)` : ""}</div>` +
      `<p><b>Question</b> (${esc(t.source)}): ${esc(t.question)}</p>` +
      `<div><b>Thought</b>${thoughtHtml(t)}</div>` +
      `<p><b>Response</b>: ${esc(t.response)}</p>`;
  }
  listTraces();

  // tree viewer
  const trees = DATA.trees;
  $("tree-select").innerHTML = trees.map((t, i) =>
    `<option value="${i}">${esc(t.tree_id)} · ${t.nodes.length} nodes${t.kept_path.length ? " · kept path" : ""}</option>`).join("");
  function showTree(i) {
    const tree = trees[i];
    if (!tree) { $("tree").innerHTML = '<p class="note">no search trees in this warehouse</p>'; return; }
    const children = {};
    for (const n of tree.nodes) (children[n.parent] = children[n.parent] || []).push(n);
    const onPath = new Set(tree.kept_path);
    const render = (n) => {
      const check = n.check;
      const failed = check && check.ok === false;
      let verdict = check ? (check.ok ? "check ok" : "check failed" + (check.expected != null ? `, expected ${esc(check.expected)}` : "")) : "";
      if (n.terminal) verdict += n.correct ? " · correct answer" : n.correct === false ? " · wrong answer" : " · terminal";
      const text = failed ? markClaim(esc(n.text), check.claim) : esc(n.text);
      const kids = (children[n.id] || []).map(render).join("");
      return `<li><div class="node${onPath.has(n.id) ? " on-path" : ""}${failed ? " failed" : ""}" data-node="${esc(n.id)}">` +
        `<span class="tag">${esc(n.id)} Q=${n.q == null ? "-" : Number(n.q).toFixed(2)} N=${n.visits}` +
        `${n.mc == null ? "" : " mc=" + Number(n.mc).toFixed(2)} ${verdict}</span>\n${text}</div>` +
        (kids ? `<ul>${kids}</ul>` : "") + "</li>";
    };
    const roots = tree.nodes.filter((n) => n.parent == null);
    $("tree").innerHTML = `<p><b>Question</b>: ${esc(tree.question)}</p><ul>${roots.map(render).join("")}</ul>`;
  }
  $("tree-select").addEventListener("change", (e) => showTree(Number(e.target.value)));
  showTree(0);
  window.reportReady = true;
})();
