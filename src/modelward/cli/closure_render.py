"""The text ``closure show`` and ``closure reproduce`` print."""

from __future__ import annotations

import shlex

from ..ledger.closures import ClosureRow
from ..timefmt import iso

LABEL = 10


def _line(label: str, text: str) -> str:
    return f"{label:<{LABEL}}{text}"


def _where(p: dict | None) -> str:
    if not p or not p.get("path"):
        return "-"
    return p["path"] + (" (outside the repository)" if p.get("root") == "absolute" else "")


def _bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _hardware(hw: dict) -> str:
    text = f"{hw.get('cpu') or 'unknown CPU'} x {hw.get('cpus') or '?'}"
    text += f", {_bytes(hw.get('memory_bytes'))} memory"
    if hw.get("gpus"):
        names = ", ".join(g["name"] for g in hw["gpus"])
        text += f"; GPU {names} (driver {hw.get('driver') or '?'}, CUDA {hw.get('cuda') or '?'})"
    else:
        text += "; no NVIDIA GPU"
    return text


def render_closure(row: ClosureRow, record: dict, retained: list[dict], count: int) -> str:
    code, env, out = record["code"], record["environment"], record.get("output")
    status = {p["digest"]: p["status"] for p in retained}
    lines = [_line("closure", row.digest),
             _line("name", f"{record['name']} ({record['kind']})"),
             _line("status", row.status + (f" (exit {row.exit_code})" if row.exit_code
                                           else ""))]
    if count > 1:
        which = "newest complete" if row.status == "complete" else "newest"
        lines.append(_line("", f"the artifact has {count} closures; this is the {which} one"))
    if out:
        shape = "directory" if out["is_directory"] else "file"
        lines.append(_line("output", f"{out['digest']}  {_where(out)} ({shape}, "
                                     f"{_bytes(out['bytes'])})"))
    else:
        lines.append(_line("output", "- (nothing registered)"))
    seconds = (record["finished_at"] - record["started_at"]) / 1e6
    lines += [_line("command", shlex.join(record["command"])),
              _line("cwd", _where(record["cwd"])),
              _line("ran", f"{iso(record['started_at'])} -> {iso(record['finished_at'])} "
                           f"({seconds:.1f}s), exit {record['exit_code']}")]
    if code.get("commit"):
        branch = f" ({code['branch']})" if code.get("branch") else ""
        lines.append(_line("code", f"{code['repository']} @ {code['commit']}{branch}"))
        if code.get("diff"):
            untracked = (f"; untracked: {', '.join(code['untracked'])}"
                         if code["untracked"] else "")
            lines.append(_line("", f"uncommitted patch {code['diff']} "
                                   f"({_bytes(code['diff_bytes'])}{untracked})"))
        else:
            lines.append(_line("", "no uncommitted changes"))
    else:
        lines.append(_line("code", "- (no commit recorded)"))
    if "python" in env:
        lines.append(_line("python", f"{env['python']} {env['implementation']} "
                                     f"{env['platform']}, {len(env['distributions'])} "
                                     f"distributions ({env['executable']})"))
    else:
        lines.append(_line("python", f"- ({env.get('error', 'not recorded')})"))
    for lock in env.get("lock_files", []):
        lines.append(_line("lock", f"{lock['path']} {lock['digest']}"))
    variables = [f"{k}={v}" if v is not None else f"{k} (unset)"
                 for k, v in sorted(record["env"].items())]
    lines += [_line("env", ", ".join(variables) or "-"),
              _line("hardware", _hardware(record["hardware"]))]
    for i in record["inputs"]:
        lines.append(_line("input", f"{i['digest']}  {i['kind']} {i['name']}  "
                                    f"{_where(i)}  {status.get(i['digest'], '?')}"))
    base = record.get("base")
    if base:
        name = base["hosted_id"] or base["name"]
        lines.append(_line("base", f"{base['digest']}  {base['kind']} {name}  "
                                   f"{status.get(base['digest'], '?')}"))
    params = record.get("params")
    if params:
        lines.append(_line("params", f"{params['path']} {params['digest']} "
                                     f"({_bytes(params['bytes'])})"))
    lines.append(_line("seeds", ", ".join(str(s) for s in record["seeds"]) or "-"))
    lost = [p for p in retained if not p["ok"]]
    lines.append(_line("retained", "every part" if not lost else
                       "NO: " + "; ".join(p["label"] for p in lost)))
    lines.append(_line("gaps", "none" if not row.gaps else row.gaps[0]))
    lines += [_line("", g) for g in row.gaps[1:]]
    tail = record.get("output_tail") or ""
    tail_lines = tail.splitlines()
    lines.append(f"output tail ({len(tail_lines)} lines):")
    lines += [f"  | {t}" for t in tail_lines]
    return "\n".join(lines) + "\n"


def render_reproduction(rep) -> str:
    env = rep.environment
    lines = [_line("verdict", rep.verdict),
             _line("closure", f"{rep.closure} ({rep.name})"),
             _line("recorded", rep.recorded_digest),
             _line("rebuilt", rep.new_digest or "- (no output)"),
             _line("workdir", rep.workdir),
             _line("code", f"{rep.code['commit']} from {rep.code['source']}"
                           + (f", patch applied ({_bytes(rep.code['patch_bytes'])})"
                              if rep.code.get("patch") else ", no patch"))]
    how = {"current": "this interpreter, no new environment",
           "system": "new venv over the host's packages",
           "pip": "new venv, distributions installed with pip"}[env["mode"]]
    lines.append(_line("env", f"{env['mode']}: {how}; {len(env['installed'])} installed, "
                              f"{len(env['skipped'])} skipped"))
    for s in env["skipped"]:
        lines.append(_line("", f"skipped {s['name']}: {s['reason']}"))
    lines.append(_line("exit", str(rep.exit_code)))
    if rep.eval:
        for metric, s in rep.eval["scores"].items():
            lines.append(_line("eval", f"{metric}: recorded {s['recorded']}, rebuilt "
                                       f"{s['reproduced']}"))
        lines.append(_line("", f"tolerance {rep.eval['tolerance']:g}; runs "
                               f"{rep.eval['runs']['recorded']} and "
                               f"{rep.eval['runs']['reproduced']}"))
    if not rep.differences:
        lines.append("differences: none")
    else:
        lines.append(f"differences ({len(rep.differences)}):")
        lines += [f"  - {d['detail']}" for d in rep.differences[:50]]
        if len(rep.differences) > 50:
            lines.append(f"  … and {len(rep.differences) - 50} more (see reproduce.json)")
    return "\n".join(lines) + "\n"
