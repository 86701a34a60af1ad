"""Text output of ``modelward experiment check|audit|regimes``."""

from __future__ import annotations

from ..display import plural
from ..timefmt import iso
from .evalsets import rows_table

BASIS = {"exposures": "recorded exposures",
         "salt": "the salt's assignment of the pre-period population (no exposures yet)",
         "assignments": "the assignments file"}


def _p(p) -> str:
    return "-" if p is None else f"{p:.2g}"


def _f(x, spec: str = ".3g") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return format(x, spec)


def render_check(r) -> str:
    exp = r.experiment
    if exp["name"]:
        arms = ", ".join(f"{a['name']}={a['weight']:g}" for a in exp["arms"])
        head = f"experiment {exp['name']}: {arms} (salt {exp['salt']})"
    else:
        arms = ", ".join(f"{a['name']}={a['share']:g}" if a["share"] is not None else a["name"]
                         for a in exp["arms"])
        head = f"assignments {exp['source']}: {arms} (control arm: {exp['control']})"
    lines = [head, f"{r.subjects:,} subjects from {BASIS[r.basis]}"]
    if r.multi_arm:
        lines.append(f"  {r.multi_arm:,} subjects in more than one arm were set aside")
    if r.mismatched is not None:
        lines.append(f"  {r.mismatched:,} subjects recorded in another arm than the salt's")
    if r.srm is not None:
        s = r.srm
        verdict = ("MISMATCH" if s.alarm else "ok" if s.judged
                   else f"not judged (an arm expects fewer than {s.min_count})")
        lines += ["", f"sample ratio: {verdict}"]
        lines += rows_table([[a, f"{n:,}", f"expected {s.expected.get(a, 0):,.1f}"]
                             for a, n in s.counts.items()], right=(1,))
        if s.chi2 is not None:
            lines.append(f"  chi-square {s.chi2:.2f}, {s.dof} df, p = {_p(s.p_value)} "
                         f"(alarm below {s.alpha:g})")
    if r.pre_period is not None:
        pp = r.pre_period
        lines += ["", f"covariate balance ({pp['source']}: {pp['matched']:,} of "
                      f"{pp['subjects']:,} subjects in the experiment):"]
        rows = [["covariate", "arm", "mean arm", "mean control", "SMD", "p", "p family-wise", ""]]
        rows += [[d.covariate, d.arm, _f(d.mean_arm, ".4g"), _f(d.mean_control, ".4g"),
                  _f(d.smd, "+.3f"), _p(d.p_value), _p(d.p_adjusted),
                  "IMBALANCED" if d.flagged else ""] for d in r.balance]
        lines += rows_table(rows, right=(2, 3, 4, 5, 6))
    if r.correlations:
        lines += ["", "other experiments over shared subjects:"]
        for c in r.correlations:
            verdict = "CORRELATED" if c.alarm else "ok" if c.judged else "not judged"
            over = "; ".join(f"{o.arm}∩{o.other_arm} {o.observed:,} ({_f(o.ratio, '.2f')}x "
                             f"expected)" for o in c.overlaps)
            lines.append(f"  {c.other}: {c.shared:,} shared, {c.method}, "
                         f"p = {_p(c.p_value)}, Holm {_p(c.p_adjusted)}: {verdict}"
                         + (f"; {over}" if over else ""))
    if r.order:
        lines += ["", "arm against ID order and sign-up time:"]
        rows = [[t.test, t.arm or "all arms", _p(t.p_value), _p(t.p_adjusted),
                 "FOLLOWS" if t.flagged else (t.note or "")] for t in r.order]
        lines += rows_table([["test", "arm", "p", "p Holm", ""], *rows], right=(2, 3))
    for note in r.notes:
        lines.append(f"note: {note}")
    lines.append("")
    if r.problems:
        lines.append(f"{plural(len(r.problems), 'problem')}:")
        lines += [f"  - {p}" for p in r.problems]
    else:
        lines.append("no problem found")
    return "\n".join(lines)


def render_regimes(rep, labels: dict[str, str]) -> str:
    n = len(rep.regimes)
    changed = f" ({', '.join(rep.varying)} changed)" if rep.varying else ""
    lines = [f"experiment {rep.experiment}: {rep.exposures:,} exposures in "
             f"{plural(n, 'regime')}{changed}; metric: {rep.metric}"]
    if rep.treatment_dims:
        lines.append(f"  differs by arm by design: {', '.join(rep.treatment_dims)}")
    for reg in rep.regimes:
        sub = " · ".join(f"{k.removesuffix('_digest')} {_label(v, labels)}"
                         for k, v in reg.key.items())
        lines += ["", f"{reg.label}  {iso(reg.first_at)} to {iso(reg.last_at)}  "
                      f"{reg.exposures:,} exposures", f"  {sub}"]
        lines += rows_table([[a, f"{m.exposures:,} exposures", f"{m.subjects:,} subjects",
                              f"metric n={m.n:,}", f"mean {_f(m.mean, '.4g')}",
                              f"sd {_f(m.sd, '.4g')}",
                              f"per subject {_f(m.subject_mean, '.4g')} "
                              f"(sd {_f(m.subject_sd, '.4g')})"] for a, m in reg.arms.items()])
    for i in rep.interactions:
        lines += ["", f"treatment-by-regime interaction ({i.arm} vs {i.control}):"]
        if i.p_value is None:
            lines.append(f"  not tested: {i.note}")
        else:
            welch = (f"Welch's F({i.dof}, {i.dof2:.3g}) {i.f:.3g}" if i.f is not None
                     and i.dof2 is not None else f"{i.dof} df")
            lines.append(f"  Cochran's Q {i.q:.3g}, {welch}, p = {_p(i.p_value)}, "
                         f"I² {i.i2:.2f}")
        for label, e in i.effects.items():
            lines.append(f"  {label}: effect {e['effect']:+.4g}, {e['level']:.0%} CI "
                         f"[{e['low']:+.4g}, {e['high']:+.4g}] (se {e['se']:.3g}, "
                         f"{e['subjects_arm']:,} and {e['subjects_control']:,} subjects)")
    return "\n".join(lines)


def _label(value, labels: dict[str, str]) -> str:
    if isinstance(value, list):
        return " | ".join(_label(v, labels) for v in value)
    if value is None:
        return "-"
    return labels.get(value, str(value)) if isinstance(value, str) else str(value)
