"""The `steps` filter on real text: GSM8K human solution lines (test set, calculator notes
removed), one paragraph per line, including prose with nothing to check."""

from __future__ import annotations

import polars as pl
from reasonfactory.filters.steps import steps_filter

# GSM8K test items 1 and 2, as written by people; a thought of prose and claims.
JANET = (
    "Janet's ducks lay 16 eggs per day.\n\n"
    "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\n\n"
    "She makes 9 * 2 = $18 every day at the farmer\u2019s market."
)
FIBER = (
    "It takes 2/2=1 bolt of white fiber\n\nSo the total amount of fabric is 2+1=3 bolts of fabric"
)


def test_prose_paragraphs_are_not_false_steps():
    verdicts = steps_filter(
        pl.DataFrame({"thought": [JANET, FIBER, JANET.replace("= $18", "= $17"), "No work."]})
    )
    assert verdicts["reason"].to_list() == [None, None, "false_step", "no_claims"]
    assert verdicts["detail"].struct.field("claims").to_list()[:2] == [2, 2]
