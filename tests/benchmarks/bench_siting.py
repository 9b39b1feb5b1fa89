"""Benchmark: siting new facilities with HiGHS on a sparse model, beside CBC on the same
model as spopt builds it (what gridmap used before).

    python -m tests.benchmarks.bench_siting [--time-limit 120]

On the bundled sample (road network, demand from its 651 grid cells), for each case —
police posts (500 m by road) with p = 5 and p = 10 new sites over the road intersections
and over a lattice at half the radius (1,747 candidates), and the set cover of every
reachable household on that lattice — one :meth:`geo.access.Access.siting_problem` is
built, then solved twice in the same run:

- gridmap: :mod:`geo.location_models` (the model built from the coverage matrix's
  nonzeros, solved by HiGHS through ``scipy.optimize.milp`` with a zero gap);
- reference: spopt's ``MCLP``/``LSCP.from_cost_matrix`` on the same coverage (a dense cost
  matrix, infinite beyond the radius) solved by CBC through PuLP, as gridmap did before.

Printed per case: seconds (model built and solved) of each, their ratio, the objective of
each (households covered, or sites needed) and whether each proved optimality. Then the
whole ``Access.site`` call (what ``GET /siting`` runs in its child process) per case. The
targets: p ≤ 10 in ≤ 3 s, a lattice in ≤ 15 s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pulp
from spopt.locate import LSCP, MCLP

from geo.location_models import max_coverage, set_cover
from tests.conftest import SAMPLE

CASES = [
    ("police_post", "mclp", 5, "intersections"),
    ("police_post", "mclp", 10, "intersections"),
    ("police_post", "mclp", 10, "lattice"),
    ("police_post", "lscp", None, "lattice"),
]


def _cbc(problem, model: str, p, time_limit: float):
    """The same problem as spopt builds it, solved by CBC: (objective, proven, seconds)."""
    t = time.perf_counter()
    dense = problem.covering.toarray()
    cost = np.where(dense, 1.0, np.inf)
    solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit)
    if model == "mclp":
        m = MCLP.from_cost_matrix(cost, problem.weights, problem.radius, p)
    else:
        m = LSCP.from_cost_matrix(cost, problem.radius)
    m.solve(solver)
    chosen = np.array([j for j, v in enumerate(m.fac_vars) if v.varValue and v.varValue > 0.5])
    seconds = time.perf_counter() - t
    if model == "mclp":
        objective = float(problem.weights[dense[:, chosen].any(axis=1)].sum())
    else:
        objective = float(len(chosen))
    proven = m.problem.status == 1 and m.problem.sol_status == pulp.LpSolutionOptimal
    return objective, proven, seconds


def _highs(problem, model: str, p, time_limit: float):
    t = time.perf_counter()
    if model == "mclp":
        s = max_coverage(problem.covering, problem.weights, p, time_limit=time_limit)
    else:
        s = set_cover(problem.covering, time_limit=time_limit)
    return s.objective, s.proven_optimal, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=120.0)
    args = ap.parse_args(argv)
    from web import create_app

    access = create_app({"DATASET": str(SAMPLE)}).extensions["gridmap"].access()
    print(f"{'case':38s} {'HiGHS s':>8s} {'CBC s':>8s} {'ratio':>6s}  objective HiGHS / CBC")
    for kind, model, p, source in CASES:
        problem = access.siting_problem(kind, source)
        h_obj, h_proven, h_s = _highs(problem, model, p, args.time_limit)
        c_obj, c_proven, c_s = _cbc(problem, model, p, args.time_limit)
        name = f"{kind} {model}{f' p={p}' if p else ''} {source} ({problem.candidates} cand.)"
        print(
            f"{name:38s} {h_s:8.2f} {c_s:8.2f} {h_s / c_s:6.3f}  {h_obj:g}"
            f"{' proven' if h_proven else ''} / {c_obj:g}{' proven' if c_proven else ''}"
        )
    print("whole Access.site (matrix, model, solve, ranking):")
    for kind, model, p, source in CASES:
        t = time.perf_counter()
        r = access.site(kind, p, model=model, candidates=source, time_limit=args.time_limit)
        print(f"  {kind} {model} p={p} {source}: {time.perf_counter() - t:.2f} s, "
              f"{len(r['suggestions'])} sites, {r['status']}")  # fmt: skip


if __name__ == "__main__":
    main()
