"""The ILP over (op, step) and (tensor, step) binaries with topology-aware variable pruning.

Variables (paper notes §1.3, after the adaptation [A] with our corrections): run[v,j] = op v runs
at step j; res[t,j] = tensor t is resident at step j; M >= 0, minimised.

  (1) Σ_v run[v,j] = 1            (2) Σ_j run[v,j] = 1
  (3) run[c,j] <= res[t,j] for t ∈ in(c)
  (4a) res[t,j] <= res[t,j-1] + run[prod t, j]     (4b) res[t,j] >= run[prod t, j]
  (4c) res[t,j] <= Σ_{c ∈ cons t} Σ_{k >= j} run[c,k]  (graph outputs instead: res[t,j] >= res[t,j-1])
  (6) Σ_t S_t res[t,j] + Σ_v ES_v run[v,j] <= M

Pruning: run[v,j] exists only for j ∈ [|anc v|, n-1-|des v|]; res[t,j] only for
j ∈ [|anc prod t|, max_c (n-1-|des c|)] (all of [.., n-1] for graph outputs). A tensor nobody
reads is charged to its producer's step (ES) and gets no T variables. Graph inputs are resident
from step 0.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass

from mlkit.errors import BackendUnavailable

from .graph import Graph

__all__ = ["IlpResult", "build_ilp", "solve_ilp", "stdout_to_stderr"]


@dataclass
class IlpResult:
    order: list[int] | None
    objective: float | None
    optimal: bool
    status: str
    lower_bound: float | None
    variables: int
    variables_unpruned: int
    seconds: float


@contextlib.contextmanager
def stdout_to_stderr():
    """Solvers print banners on fd 1 (HiGHS does when constructed); keep stdout pure data."""
    try:
        sys.stdout.flush()
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    saved = os.dup(fd)
    try:
        os.dup2(sys.stderr.fileno(), fd)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


def _windows(g: Graph, prune: bool) -> tuple[list[range], dict[int, range]]:
    n = g.n
    if not prune:
        full = range(n)
        return [full] * n, {t: full for t in range(len(g.tensors))}
    anc = [bin(m).count("1") for m in g.ancestors()]
    des = [bin(m).count("1") for m in g.descendants()]
    op_win = [range(anc[v], n - des[v]) for v in range(n)]
    t_win = {}
    for t in range(len(g.tensors)):
        lo = 0 if g.prod[t] is None else anc[g.prod[t]]
        hi = n - 1 if g.tensors[t].output else max((n - 1 - des[c] for c in g.cons[t]), default=lo)
        t_win[t] = range(lo, hi + 1)
    return op_win, t_win


def build_ilp(g: Graph, *, prune: bool = True, upper_bound: int | None = None):
    """The pulp model: (problem, run vars O[v,j], resident vars T[t,j], M, unpruned variable count)."""
    import pulp

    n = g.n
    op_win, t_win = _windows(g, prune)
    prob = pulp.LpProblem("memsched", pulp.LpMinimize)
    run = {(v, j): pulp.LpVariable(f"O_{v}_{j}", cat="Binary") for v in range(n) for j in op_win[v]}
    tracked = [t for t in range(len(g.tensors)) if g.cons[t] or g.tensors[t].output]
    res = {(t, j): pulp.LpVariable(f"T_{t}_{j}", cat="Binary") for t in tracked for j in t_win[t]}
    M = pulp.LpVariable("M", lowBound=0)
    prob += M
    at_step: list[list] = [[] for _ in range(n)]
    for (v, j), var in run.items():
        at_step[j].append((v, var))
    for j in range(n):
        prob += pulp.lpSum(var for _, var in at_step[j]) == 1, f"one_op_{j}"
    for v in range(n):
        prob += pulp.lpSum(run[v, j] for j in op_win[v]) == 1, f"op_once_{v}"
    for c in range(n):
        for t in g.ins[c]:
            for j in op_win[c]:
                if (t, j) in res:
                    prob += run[c, j] <= res[t, j]
                else:
                    prob += run[c, j] == 0
    for t in tracked:
        p = g.prod[t]
        for j in t_win[t]:
            prev = res.get((t, j - 1))
            if p is None:  # graph input: resident from the start, never re-created
                prob += (res[t, j] == 1) if j == 0 else (res[t, j] <= prev)
            else:
                o_pj = run.get((p, j))
                prob += res[t, j] <= (prev if prev is not None else 0) + (o_pj if o_pj is not None else 0)
                if o_pj is not None:
                    prob += res[t, j] >= o_pj
            if g.tensors[t].output:
                if prev is not None:
                    prob += res[t, j] >= prev
            else:
                later = [run[c, k] for c in g.cons[t] for k in op_win[c] if k >= j]
                prob += res[t, j] <= pulp.lpSum(later)
    dead = [sum(g.size[t] for t in g.outs[v] if not g.cons[t] and not g.tensors[t].output)
            for v in range(n)]
    tensors_at: list[list] = [[] for _ in range(n)]
    for (t, j), var in res.items():
        tensors_at[j].append(g.size[t] * var)
    for j in range(n):
        extra = [(g.ops[v].es + dead[v]) * var for v, var in at_step[j] if g.ops[v].es + dead[v]]
        prob += pulp.lpSum(tensors_at[j] + extra) <= M, f"mem_{j}"
    if upper_bound is not None:
        prob += M <= upper_bound, "upper_bound"
    unpruned = n * n + len(tracked) * n
    return prob, run, res, M, unpruned


def _warm_highs_class():
    import pulp

    class WarmHiGHS(pulp.HiGHS):
        """pulp's HiGHS with a MIP start: ``start`` maps variables to values (others 0)."""

        start: dict = {}

        def callSolver(self, lp):
            if self.start:
                import highspy

                sol = highspy.HighsSolution()
                sol.col_value = [float(self.start.get(v, 0.0)) for v in lp.variables()]
                sol.value_valid = True
                lp.solverModel.setSolution(sol)
            super().callSolver(lp)

    return WarmHiGHS


def _start_values(g: Graph, order: list[int], run: dict, res: dict, M) -> dict:
    """The ILP variables of a known order: its steps, residencies and peak."""
    from .graph import simulate

    step = {v: j for j, v in enumerate(order)}
    values = {var: 1.0 for (v, j), var in run.items() if step[v] == j}
    for (t, j), var in res.items():
        p = g.prod[t]
        born = 0 if p is None else step[p]
        dies = len(order) - 1 if g.tensors[t].output else max(step[c] for c in g.cons[t])
        if born <= j <= dies:
            values[var] = 1.0
    values[M] = float(simulate(g, order)[0])
    return values


def _solver(name: str, time_limit: float, threads: int | None, **extra):
    import pulp

    if name == "highs":
        # sizes are integer bytes: an absolute gap under 1 byte is a proof of optimality
        s = _warm_highs_class()(msg=False, timeLimit=time_limit, threads=threads, mip_rel_gap=0.0,
                                mip_abs_gap=0.999, **extra)
    elif name == "cbc":
        s = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=0.0, gapAbs=0.999, threads=threads)
    else:
        raise BackendUnavailable("unknown LP solver", expected="highs or cbc", got=name)
    if not s.available():
        raise BackendUnavailable(f"LP solver {name} not available", hint="pip install highspy pulp")
    return s


def solve_ilp(g: Graph, *, solver: str = "highs", time_limit: float = 60.0, prune: bool = True,
              upper_bound: int | None = None, threads: int | None = None,
              warm_start: list[int] | None = None) -> IlpResult:
    """Solve; ``optimal`` only when the solver proved it (pulp's sol_status == 1, not LpStatus).
    ``warm_start``: a known order (op indices) handed to HiGHS as its first incumbent."""
    t0 = time.perf_counter()
    if g.n == 0:
        return IlpResult([], 0.0, True, "optimal", 0.0, 0, 0, 0.0)
    prob, run, res, M, unpruned = build_ilp(g, prune=prune, upper_bound=upper_bound)
    nvars = len(run) + len(res)
    s = _solver(solver, time_limit, threads)
    if warm_start is not None and hasattr(s, "start"):
        s.start = _start_values(g, warm_start, run, res, M)
    with stdout_to_stderr():
        prob.solve(s)
    if prob.sol_status == -1 and solver == "highs":
        # Every topological order is feasible, so "infeasible" is wrong. HiGHS 1.16's presolve
        # reports it on some unpruned models (CBC, and HiGHS without presolve, solve them): retry.
        left = max(1.0, time_limit - (time.perf_counter() - t0))
        prob, run, res, M, unpruned = build_ilp(g, prune=prune, upper_bound=upper_bound)
        with stdout_to_stderr():
            prob.solve(_solver(solver, left, threads, presolve="off"))
    seconds = time.perf_counter() - t0
    status = {1: "optimal", 2: "feasible", 0: "no solution", -1: "infeasible", -2: "unbounded"}.get(
        prob.sol_status, str(prob.sol_status))
    order = None
    if prob.sol_status in (1, 2):
        step_of = {}
        for (v, j), var in run.items():
            if (var.value() or 0) > 0.5:
                step_of[v] = j
        if len(step_of) == g.n:
            order = sorted(range(g.n), key=lambda v: step_of[v])
    lb = None
    model = getattr(prob, "solverModel", None)
    if model is not None and hasattr(model, "getInfo"):
        with contextlib.suppress(Exception):
            lb = float(model.getInfo().mip_dual_bound)
    obj = M.value()
    if obj is not None and abs(obj - round(obj)) < 1e-6:
        obj = float(round(obj))  # sizes are integer bytes; drop the solver's float noise
    if prob.sol_status == 1:
        lb = obj
    return IlpResult(order, obj, prob.sol_status == 1, status, lb, nvars, unpruned, seconds)
