"""How a PRM picks among whole samples (best-of-N): what its score follows, right answers or
the text's surface, under each aggregate.

    python bench/bench_prm_select.py --prm DIR [--problems 150] [--samples 8] [--seed 1]

Input: `--problems` built-in arithmetic problems (difficulty 3-4, `--seed`; seed 1 is
`bench_search.py`'s table), `--samples` sim samples each at error_rate 0.3, every sample's
thought split into steps as best-of-N splits it (`PrmPairScorer`) and scored by the PRM folder
`--prm` and by `equations` (the arithmetic verifier as a perfect step judge). Per scorer and
aggregate (`last`, `min`): the AUROC of a sample's score for a right against a wrong final
answer, best-of-N's accuracy (the top-scored sample per problem, ties to the first), and the
Spearman correlation of the `last` score with the length of the last step's text (a surface
feature: a slip carried forward writes longer numbers, signs and brackets).
"""

from __future__ import annotations

import argparse

from reasonfactory.generators.engines.base import GenRequest
from reasonfactory.generators.engines.prm import PrmConfig, PrmScorer, aggregate
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.beam import EquationsScorer
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.prompts import STEP_BOUNDARY, build_messages, parse_completion
from reasonfactory.generators.train_prm import auroc
from reasonfactory.generators.verify.answers import answer_key, extract_boxed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prm", required=True, help="a PRM folder (train --kind prm)")
    ap.add_argument("--problems", type=int, default=150)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    from scipy.stats import spearmanr

    problems = load_problems(
        "builtin:arithmetic", limit=args.problems, difficulty=(3, 4), seed=args.seed
    )
    questions, golds = list(problems["question"]), list(problems["gold"])
    replies = SimEngine(error_rate=0.3).generate(
        [GenRequest(messages=build_messages(q), n=args.samples, seed=i)
         for i, q in enumerate(questions)]
    )  # fmt: skip
    items, right, owner = [], [], []
    for p, (q, gold, samples) in enumerate(zip(questions, golds, replies, strict=True)):
        for c in samples:
            parsed = parse_completion(c.text)
            steps = [s.strip() for s in parsed.thought.split(STEP_BOUNDARY) if s.strip()]
            items.append((q, steps))
            right.append(answer_key(extract_boxed(parsed.response)) == answer_key(gold))
            owner.append(p)
    print(f"{args.problems} problems (builtin:arithmetic, difficulty 3-4, seed {args.seed}), "
          f"{args.samples} sim samples each at error_rate 0.3: {len(items)} samples, "
          f"{sum(right) / len(right):.3f} right")  # fmt: skip
    lengths = [len(steps[-1]) if steps else 0 for _, steps in items]
    for name, scorer in (("PRM " + args.prm, PrmScorer.load(PrmConfig(model=args.prm))),
                         ("equations", EquationsScorer())):  # fmt: skip
        step_scores = scorer.score_steps(items)
        for how in ("last", "min"):
            score = [aggregate(s, how) for s in step_scores]
            good = [s for s, r in zip(score, right, strict=True) if r]
            bad = [s for s, r in zip(score, right, strict=True) if not r]
            best: dict[int, tuple[float, int]] = {}
            for i, (s, p) in enumerate(zip(score, owner, strict=True)):
                if p not in best or s > best[p][0]:
                    best[p] = (s, i)
            accuracy = sum(right[i] for _, i in best.values()) / len(best)
            line = f"  {name}, {how}: auroc right/wrong {auroc(good, bad):.4f}, "
            line += f"best-of-{args.samples} accuracy {accuracy:.3f}"
            if how == "last":
                rho = spearmanr(score, lengths).statistic
                line += f", spearman with last-step length {rho:.3f}"
            print(line)


if __name__ == "__main__":
    main()
