"""`reasonfactory report` rendered in a real headless Chromium (Debian's `chromium`, driven by
playwright through `executable_path`): a warehouse with every method (self_output, tree, sos,
journey, and distill against a local OpenAI-compatible server), no console errors, every plot
drew marks, the browser's search finds a known trace, a journey trace shows its four coloured
parts, the tree viewer highlights the kept path, the evals table shows an `eval` run's metrics.
Saves a PNG screenshot (README shows one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_jsonl
from reasonfactory.flows.evaluate import eval_recipe, run_eval
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.stats import run_stats
from reasonfactory.warehouse.store import Warehouse
from teacher_server import TeacherServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PLOTS = ["funnel", "lengths", "accuracy", "passk", "language", "reasons", "trees"]

RECIPES = [
    {
        "name": "r-self",
        "problems": {"source": "builtin:arithmetic", "limit": 16},
        "generate": {"method": "self_output", "samples": 4},
        "filters": ["format", "answer", {"language": {"lang": "en"}}],
    },
    {
        "name": "r-tree",
        "problems": {"source": "builtin:arithmetic", "limit": 6, "difficulty": [3, 4]},
        "engine": {"kind": "sim", "error_rate": 0.3},
        "generate": {"method": "tree", "rollouts": 6, "width": 3},
    },
    {
        "name": "r-sos",
        "problems": {"source": "builtin:countdown", "limit": 8},
        "generate": {"method": "sos", "samples": 1, "max_nodes": 200},
    },
    {
        "name": "r-journey",
        "problems": {"source": "builtin:linear", "limit": 8},
        "generate": {"method": "journey", "from": "inject", "detours": 1, "samples": 4},
    },
]


def _open_offline(browser, out: Path):
    """The report in a new page that may fetch nothing but the file itself: returns the page,
    the errors it logged (console errors, uncaught exceptions, dialogs) and what it tried to
    fetch (each refused)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append(f"dialog {d.message}"), d.dismiss()))
    fetched: list[str] = []

    def offline(route):
        if route.request.url == out.as_uri():
            return route.continue_()
        fetched.append(route.request.url)
        return route.abort()

    page.route("**/*", offline)
    page.goto(out.as_uri())
    return page, errors, fetched


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("CI installs chromium (.ci/run): it is missing")
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    return sync_api


@pytest.fixture(scope="module")
def every_method(prefect_api, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    path = folder / "wh.duckdb"
    for recipe in RECIPES:
        run_recipe(parse_recipe(recipe), str(path))
    problems = write_jsonl(
        folder / "p.jsonl",
        [{"question": f"What is {a} + {b}?", "answer": str(a + b)} for a, b in [(3, 4), (9, 9)]],
    )
    with TeacherServer(split=True) as srv:
        distill = {
            "name": "r-distill",
            "problems": {"source": str(problems)},
            "engine": {"kind": "openai", "model": "teacher", "base_url": srv.base_url,
                       "price_in": 0.5, "price_out": 2.0},
            "generate": {"method": "distill", "samples": 2, "max_tokens": 200},
        }  # fmt: skip
        run_recipe(parse_recipe(distill), str(path))
    sim_eval = {"name": "r-eval", "problems": {"source": "builtin:linear", "limit": 12}}
    run_eval(eval_recipe(sim_eval, samples=2, temperature=0.7), path, benchmark="linear-12")
    return path


@pytest.mark.slow
def test_report_renders_in_headless_chromium(every_method, cli, tmp_path):
    sync_api = _browser()
    out = tmp_path / "report.html"
    proc = cli("report", "-w", str(every_method), "--out", str(out), check=True)
    assert "written to" in proc.stdout
    html = out.read_text(encoding="utf-8")
    assert "<script src=" not in html and "<link " not in html, "the page must work offline"
    with Warehouse(every_method, read_only=True) as wh:
        methods = set(wh.sql("SELECT DISTINCT method FROM traces")["method"])
        known = wh.sql(
            "SELECT trace_id, question FROM traces JOIN problems USING (problem_id) "
            "WHERE method = 'distill' AND question LIKE '%9 + 9%' LIMIT 1"
        ).row(0, named=True)
        evals = wh.sql("SELECT subset, metric, value, ci_low, ci_high, n FROM evals")
    assert methods == {"self_output", "tree", "sos", "journey", "distill"}
    assert evals.height >= 3  # pass@1, pass@2, maj@2 over all problems (+ subsets)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page, errors, fetched = _open_offline(browser, out)
        page.wait_for_function("window.reportReady === true")
        page.wait_for_function(f"Object.keys(window.plotsDrawn).length === {len(PLOTS)}")

        for name in PLOTS:
            assert page.evaluate("n => window.plotsDrawn[n]", name) == "drawn", name
            marks = page.evaluate(
                "n => document.querySelectorAll(`#plot-${n} svg g.trace path, "
                "#plot-${n} svg g.trace rect`).length",
                name,
            )
            assert marks > 0, f"plot {name} drew no marks"

        # the evals table: one row per stored evals row, values as in the warehouse
        cells = page.eval_on_selector_all(
            "#evals-table tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
        assert cells[0][:7] == [
            "model", "benchmark", "subset", "metric", "value", "95% interval", "n"
        ]  # fmt: skip
        assert len(cells) == evals.height + 1
        whole = evals.filter((evals["subset"] == "all") & (evals["metric"] == "pass@1")).row(
            0, named=True
        )
        row = next(c for c in cells[1:] if c[1:4] == ["linear-12", "all", "pass@1"])
        assert row[4] == f"{100 * whole['value']:.1f}%"
        assert row[5] == f"[{100 * whole['ci_low']:.1f}%, {100 * whole['ci_high']:.1f}%]"
        assert row[6] == str(whole["n"]) == "12"

        # search finds a known trace (by a word of its question) and only matching ones
        page.fill("#search", "9 + 9")
        ids = page.eval_on_selector_all(".trace-item", "els => els.map(e => e.dataset.id)")
        assert known["trace_id"] in ids
        page.fill("#search", known["trace_id"])
        assert page.eval_on_selector_all(".trace-item", "els => els.map(e => e.dataset.id)") == [
            known["trace_id"]
        ]
        page.fill("#search", "")

        # a journey trace shows its error, feedback, back-track and correction, each coloured
        page.select_option("#f-method", "journey")
        page.select_option("#f-status", "kept")
        page.click(".trace-item")
        colours = {}
        for part in ("error", "feedback", "backtrack", "correction"):
            spans = page.query_selector_all(f"#trace-detail .j-{part}")
            assert spans, f"journey part {part} not shown"
            colours[part] = spans[0].evaluate("e => getComputedStyle(e).backgroundColor")
        assert len(set(colours.values())) == 4, colours
        assert page.query_selector("#trace-detail .j-error mark.claim") is not None

        # the tree viewer: the kept path is highlighted
        assert len(page.query_selector_all("#tree .node.on-path")) >= 2
        assert len(page.query_selector_all("#tree .node")) > len(
            page.query_selector_all("#tree .node.on-path")
        )

        page.select_option("#f-method", "")
        page.select_option("#f-status", "")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == [] and fetched == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("REASONFACTORY_SCREENSHOT"):  # how README's picture is made
        shutil.copy(shot, Path(os.environ["REASONFACTORY_SCREENSHOT"]))


# Text a model, a problem file or a user may put in a trace: each once blanked the report
# (`<!--<script>` swallowed the page's script; `{{script}}` spliced the page's JavaScript into
# its data) or could run as script if shown as HTML.
HOSTILE = [
    "<!--<script>",
    "</script><script>window.pwned = 'script'</script>",
    "{{script}}",
    "{{plotly}}",
    "{{data}}",
    "{{title}}",
    "<img src=x onerror=\"window.pwned = 'img'\">",
    "a\u2028line\u2029break",
    "&amp; <b>not bold</b>",
]
HOSTILE_RUN = "r_{{script}}<!--<script>"


@pytest.fixture()
def hostile_warehouse(tmp_path) -> Path:
    """Rows ingested with `warehouse.store`: a run, its problem and traces (kept, rejected,
    a journey with detour offsets) and a search tree, all holding the hostile text."""
    import datetime as dt

    import polars as pl
    from reasonfactory.warehouse.schema import NODES, PROBLEMS, RUNS, TRACES

    text = "\n\n".join(HOSTILE)
    now = dt.datetime.now(dt.UTC)
    meta = {"verdicts": {"format": HOSTILE[0], "answer": "ok"}, "tree_id": "tr", "path": ["0"]}
    journey = {"errors": [{"error_start": 0, "error_end": 12, "feedback_start": 14,
                           "feedback_end": 60, "written": HOSTILE[0]}]}  # fmt: skip
    traces = [
        {"trace_id": f"t{i}", "problem_id": "p", "run_id": HOSTILE_RUN, "method": method,
         "model": HOSTILE[1], "thought": text, "response": " ".join(HOSTILE),
         "predicted": HOSTILE[2], "correct": i % 2 == 0, "n_tokens": 40 + i, "lang": "en",
         "status": "kept" if i % 2 == 0 else "rejected",
         "reject_reason": None if i % 2 == 0 else HOSTILE[i % len(HOSTILE)],
         "score": 0.5, "created_at": now - dt.timedelta(hours=i),
         "meta": json.dumps({**meta, "journey": journey} if method == "journey" else meta)}
        for i, method in enumerate(["self_output"] * 6 + ["journey"] * 2)
    ]  # fmt: skip
    nodes = [
        {"tree_id": "tr", "node_id": "0", "problem_id": "p", "run_id": HOSTILE_RUN, "depth": 0,
         "text": text, "is_terminal": False, "visits": 3, "q_value": 0.5,
         "meta": json.dumps({"check": {"kind": "equations", "ok": False, "claim": HOSTILE[0],
                                       "expected": HOSTILE[2]}})},
        {"tree_id": "tr", "node_id": "0.1", "parent_id": "0", "problem_id": "p",
         "run_id": HOSTILE_RUN, "depth": 1, "text": HOSTILE[1], "is_terminal": True,
         "correct": True, "visits": 1, "q_value": 1.0},
    ]  # fmt: skip
    path = tmp_path / "hostile.duckdb"
    with Warehouse(path) as wh:
        wh.ingest("runs", RUNS.conform(pl.DataFrame([{
            "run_id": HOSTILE_RUN, "recipe_name": HOSTILE[5], "recipe": f"name: '{HOSTILE[3]}'",
            "fingerprint": "f", "started_at": now, "finished_at": now, "status": "completed",
        }])))  # fmt: skip
        wh.ingest("problems", PROBLEMS.conform(pl.DataFrame([{
            "problem_id": "p", "source": HOSTILE[4], "question": "What is 1 + 1? " + text,
            "gold": HOSTILE[6],
        }])))  # fmt: skip
        wh.ingest("traces", TRACES.conform(pl.DataFrame(traces)))
        wh.ingest("nodes", NODES.conform(pl.DataFrame(nodes)))
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate cannot even be stored
        pl.DataFrame({"thought": ["a \ud800 b"]})
    return path


def test_hostile_text_in_traces_is_shown_as_text_and_never_runs(hostile_warehouse, tmp_path):
    sync_api = _browser()
    out = tmp_path / "report.html"
    proc = subprocess.run(
        [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", "report",
         "-w", str(hostile_warehouse), "--run", HOSTILE_RUN, "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # an <img src=x> that became HTML would be fetched; an alert() would open a dialog
        page, errors, fetched = _open_offline(browser, out)
        page.wait_for_function("window.reportReady === true", timeout=20_000)
        page.wait_for_function(
            f"Object.keys(window.plotsDrawn).length === {len(PLOTS)}", timeout=20_000
        )
        drawn = page.evaluate("() => window.plotsDrawn")
        assert {n for n, state in drawn.items() if state == "drawn"} >= {
            "funnel", "lengths", "accuracy", "reasons", "trees"
        }, drawn  # fmt: skip
        assert page.title() == f"reasonfactory report: {HOSTILE_RUN}"
        assert HOSTILE_RUN in page.text_content("#summary")

        # the trace browser lists every trace; a trace's text is its text, character for character
        assert len(page.query_selector_all(".trace-item")) == 8
        page.select_option("#f-method", "journey")
        page.click(".trace-item")
        detail = page.text_content("#trace-detail")
        for s in HOSTILE:
            assert s in detail, s
        assert page.query_selector("#trace-detail .j-error") is not None
        assert page.query_selector("#trace-detail img") is None
        bolds = page.eval_on_selector_all("#trace-detail b", "els => els.map(e => e.textContent)")
        assert bolds == ["t6", "Question", "Thought", "Response"]  # none from the text
        tree = page.text_content("#tree")
        assert HOSTILE[0] in tree and HOSTILE[1] in tree
        assert page.evaluate("() => window.pwned") is None
        browser.close()
    assert errors == [] and fetched == []


def test_the_report_benchmark_runs_at_a_small_size(tmp_path):
    """`bench/bench_report.py` (README quotes its figures) once died building its warehouse
    when `runs` gained a column; its SQL now names the columns it fills."""
    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_report.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--traces", "2000", "--trees", "40", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "built 2000 traces, 1000 nodes" in proc.stdout
    assert "report of 2000 traces" in proc.stdout and "report: " in proc.stdout


def _boxes_overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


@pytest.mark.slow
def test_report_plots_are_readable_and_eval_runs_read_as_evals(every_method, cli, tmp_path):
    """What a user saw after `demo`, `eval` and `report`: plotly's mode bar covered every plot
    title, the accuracy plot's tick labels were cut, a one-language plot named no language (the
    legend, hidden for one series, held the names), and an eval run read as solved 0, kept 0."""
    sync_api = _browser()
    with Warehouse(every_method, read_only=True) as wh:
        tree_run = wh.sql("SELECT run_id FROM runs WHERE recipe_name = 'r-tree'").item()
        eval_run = wh.sql("SELECT run_id FROM runs WHERE recipe_name LIKE 'eval:%'").item()
        data_rows = sum(s.method != "-" and s.run_id != eval_run for s in run_stats(wh))
        pass1 = wh.sql(
            "SELECT value, ci_low, ci_high, n FROM evals WHERE subset = 'all' AND metric = 'pass@1'"
        ).row(0, named=True)
    whole, tree_only = tmp_path / "whole.html", tmp_path / "tree.html"
    cli("report", "-w", str(every_method), "--out", str(whole), check=True)
    cli("report", "-w", str(every_method), "--run", tree_run, "--out", str(tree_only), check=True)
    ticks = "n => [...document.querySelectorAll(`#plot-${n} .xtick text`)].map(e => e.textContent)"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page, errors, fetched = _open_offline(browser, whole)
        page.wait_for_function("window.reportReady === true")
        page.wait_for_function(f"Object.keys(window.plotsDrawn).length === {len(PLOTS)}")
        for name in PLOTS:
            page.hover(f"#plot-{name} .nsewdrag")  # the mode bar shows on hover
            bar = page.locator(f"#plot-{name} .modebar").bounding_box()
            title = page.locator(f"#plot-{name} .gtitle").bounding_box()
            assert bar and title and not _boxes_overlap(bar, title), (name, bar, title)
            svg = page.locator(f"#plot-{name} svg.main-svg").first.bounding_box()
            labels = page.locator(f"#plot-{name} .xtick text, #plot-{name} .ytick text")
            for i in range(labels.count()):
                box = labels.nth(i).bounding_box()  # None: not shown
                assert box is None or (
                    svg["x"] <= box["x"] <= box["x"] + box["width"] <= svg["x"] + svg["width"]
                    and svg["y"] <= box["y"] <= box["y"] + box["height"] <= svg["y"] + svg["height"]
                ), (name, labels.nth(i).text_content(), box, svg)
        # the language filter of r-self stored `en`: the plot names it on its axis
        assert "en" in page.evaluate(ticks, "language")
        # the eval run's row gives its pass@1, not data-run columns of zeros
        rows = page.eval_on_selector_all(
            "#runs-table tr",
            "rs => rs.map(r => [r.className, ...[...r.cells].map(c => c.textContent)])",
        )
        kind, *row = next((r for r in rows if r[1].startswith(eval_run)), ["no row"])
        assert kind == "kind-eval", rows
        pct = {k: f"{100 * pass1[k]:.1f}%" for k in ("value", "ci_low", "ci_high")}
        assert row[3] == (
            f"eval: pass@1 {pct['value']} [{pct['ci_low']}, {pct['ci_high']}], n={pass1['n']}"
        ), row
        assert len(row) == 7, row  # run, method, problems, eval, tokens in, tokens out, cost
        assert sorted(r[0] for r in rows[1:]) == ["kind-data"] * data_rows + ["kind-eval"]
        # the funnel is of data runs: an eval's traces are never kept, its line fell to 0
        legend = page.eval_on_selector_all(
            "#plot-funnel .legendtext", "els => els.map(e => e.textContent)"
        )
        assert len(legend) == data_rows and not any(eval_run[:8] in name for name in legend), legend
        # one run, one series: the language is still named (`not detected`: no filter ran)
        page, more_errors, more_fetched = _open_offline(browser, tree_only)
        page.wait_for_function("window.reportReady === true")
        page.wait_for_function(f"Object.keys(window.plotsDrawn).length === {len(PLOTS)}")
        assert page.evaluate(ticks, "language") == ["not detected"]
        browser.close()
    assert errors == more_errors == [] and fetched == more_fetched == []
