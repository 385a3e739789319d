"""How the answer filter's LLM judge was used in a run, and how often it agreed with the rules.

Read from the traces the answer filter judged (`meta.verdicts.answer_by`: `rule` or `judge`;
`meta.details.answer`: the rules' outcome `rule` and the judge's verdict `judge`,
filters/judge.py). Agreement is counted where both decided: the rules said correct or wrong
and the judge CORRECT or INCORRECT (with `when: always`, every checked trace; with `when:
undecided`, none, since the judge then only sees what the rules could not decide). This
module reads; it never writes.
"""

from __future__ import annotations

from reasonfactory.warehouse.store import Warehouse

_SQL = """
SELECT
  count(*) FILTER (WHERE decider = 'rule') AS by_rule,
  count(*) FILTER (WHERE decider = 'judge') AS by_judge,
  count(*) FILTER (WHERE judge = 'judge_unparsed') AS unparsed,
  count(*) FILTER (WHERE judge = 'judge_error') AS errors,
  count(*) FILTER (WHERE rule IN ('correct', 'wrong') AND judge IN ('correct', 'incorrect'))
    AS both_decided,
  count(*) FILTER (WHERE rule IN ('correct', 'wrong') AND judge IN ('correct', 'incorrect')
    AND (rule = 'correct') = (judge = 'correct')) AS agree
FROM (
  SELECT meta->>'$.verdicts.answer_by' AS decider, meta->>'$.details.answer.rule' AS rule,
         meta->>'$.details.answer.judge' AS judge
  FROM traces WHERE run_id = ? AND method = ? AND meta->>'$.verdicts.answer_by' IS NOT NULL
)
"""


def judge_agreement(wh: Warehouse, run_id: str, method: str) -> dict:
    """`{}` for a run without a judge; else the traces decided by the rules and by the judge,
    its unparsed replies and errors, and where both decided: how many, how many agree, and
    the share (`agreement`, None when none).

    >>> import tempfile, pathlib
    >>> with Warehouse(pathlib.Path(tempfile.mkdtemp()) / "w.duckdb") as wh:
    ...     judge_agreement(wh, "r_none", "self_output")
    {}
    """
    row = wh.con.execute(_SQL, [run_id, method]).fetchall()[0]  # all: leaves no result open
    names = ("by_rule", "by_judge", "unparsed", "errors", "both_decided", "agree")
    counts = dict(zip(names, row, strict=True))
    if not counts["by_rule"] and not counts["by_judge"]:
        return {}
    both = counts["both_decided"]
    return {**counts, "agreement": counts["agree"] / both if both else None}


def judge_line(j: dict) -> str:
    """The answer judge's line of `stats`: who decided, and rules/judge agreement.

    >>> judge_line({"by_rule": 8, "by_judge": 2, "unparsed": 0, "errors": 0, "both_decided": 0})
    'rules decided 8, the judge 2 (0 unparsed, 0 errors)'
    """
    line = f"rules decided {j['by_rule']}, the judge {j['by_judge']}"
    line += f" ({j['unparsed']} unparsed, {j['errors']} errors)"
    if j["both_decided"]:
        line += f"; both decided {j['both_decided']}: agree {j['agree']} ({j['agreement']:.1%})"
    return line
