"""``modelward closure capture|show|reproduce``: training closures that rebuild."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import ValidationError
from ._common import JSON_OPTION, err, opened, out, print_json
from ._group import typer_app
from .closure_render import render_closure, render_reproduction

closure_app = typer_app(help="Record how a model was trained; rebuild it and compare.",
                          no_args_is_help=True)


def _writer(stream):
    """A sink for a child's output bytes: straight through, flushed, as it comes."""
    buffer = getattr(stream, "buffer", None)

    def write(chunk: bytes) -> None:
        if buffer is not None:
            buffer.write(chunk)
        else:
            stream.write(chunk.decode("utf-8", "replace"))
        stream.flush()
    return write


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code  # killed by signal N: 128+N, as a shell says


@closure_app.command("capture", context_settings={"allow_interspersed_args": False})
def capture_cmd(
    command: list[str] = typer.Argument(None, help="The training command and its "
                                        "arguments, after --."),
    name: str = typer.Option(..., "--name", help="Name of the trained artifact."),
    output: Path = typer.Option(..., "--output", help="File or directory the command "
                                "writes (must not exist yet)."),
    input_: list[str] = typer.Option(None, "--input", help="A registered digest or a PATH "
                                     "(registered as a dataset, payload stored); repeatable."),
    base: str = typer.Option(None, "--base", help="Digest of the base model fine-tuned."),
    params: Path = typer.Option(None, "--params", help="Hyper-parameter file (digest and "
                                "content recorded)."),
    seed: list[int] = typer.Option(None, "--seed", help="A seed (repeatable); exported as "
                                   "MODELWARD_SEED and MODELWARD_SEEDS."),
    env: list[str] = typer.Option(None, "--env", help="Name of an environment variable to "
                                  "record (repeatable; values are stored in plain text)."),
    kind: str = typer.Option("model", "--kind", help="model or adapter."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a training command and record its closure; registers what it trained.

    The command's output streams to the terminal (to stderr with --json); its exit code
    becomes this command's exit code."""
    from ..registry.closure.capture import CaptureSpec, capture

    spec = CaptureSpec(name=name, command=list(command or []), output=output, kind=kind,
                       inputs=tuple(input_ or ()), base=base, params=params,
                       seeds=tuple(seed or ()), env=tuple(env or ()))
    with opened() as store:
        result = capture(store, spec, sink=_writer(sys.stderr if as_json else sys.stdout))
    row, art = result.closure, result.artifact
    if as_json:
        print_json({"closure": row.to_dict(),
                    "artifact": art.to_dict() if art else None,
                    "artifact_created": result.artifact_created,
                    "registered_inputs": [a.digest for a in result.registered_inputs]})
    else:
        err.print(f"closure {row.digest} ({row.status})")
        for gap in row.gaps:
            err.print(f"  gap: {gap}")
        if art is not None:
            how = "registered" if result.artifact_created else "already registered"
            err.print(f"{art.kind} {art.name} {art.digest} ({how})")
    if row.exit_code != 0:
        raise SystemExit(_exit_code(row.exit_code))
    if art is None:
        raise ValidationError(f"the command succeeded but {output} was not written; closure "
                              f"{row.digest} is recorded as incomplete and nothing was "
                              "registered", field="--output")


@closure_app.command("show")
def show_cmd(digest: str = typer.Argument(..., help="A closure's digest or the trained "
                                          "artifact's."),
             as_json: bool = JSON_OPTION) -> None:
    """Print a closure: code, environment, inputs, base, params, seeds, run, gaps."""
    from ..ledger import closures as ledger_closures
    from ..registry.closure.status import retention_of

    with opened() as store:
        with store.read() as conn:
            row, count = ledger_closures.resolve(conn, digest)
        record = ledger_closures.load_record(store, row.digest)
        retained = retention_of(store, row)
    if as_json:
        print_json({"closure": row.to_dict(), "closures_of_artifact": count,
                    "retained": retained, "record": record})
    else:
        out.print(render_closure(row, record, retained, count), end="")


@closure_app.command("reproduce")
def reproduce_cmd(
    digest: str = typer.Argument(..., help="A closure's digest or the trained artifact's."),
    workdir: Path = typer.Option(..., "--workdir", help="New or empty directory to rebuild in."),
    env_mode: str = typer.Option("auto", "--env", help="auto, pip, system or current "
                                 "(see docs/closures.md)."),
    pip_arg: list[str] = typer.Option(None, "--pip-arg", help="Extra argument for pip install "
                                      "(repeatable), e.g. --pip-arg=--find-links=DIR."),
    evalset: str = typer.Option(None, "--eval", help="Compare eval scores on this eval set "
                                "(file, digest or alias) when the bytes differ."),
    runner: str = typer.Option(None, "--runner", help="Runner for --eval: MODULE:FUNC or an "
                               "OpenAI-compatible URL."),
    prompt: str = typer.Option(None, "--prompt", help="Prompt alias or digest for --eval."),
    scorer: list[str] = typer.Option(None, "--scorer", help="Scorer for --eval (repeatable; "
                                     "default exact)."),
    tolerance: float = typer.Option(0.0, "--tolerance", help="Largest score difference that "
                                    "is still equivalent."),
    limit: int = typer.Option(None, "--limit", help="Only the first N eval items."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Rebuild a trained artifact from its closure and compare: identical, equivalent or
    diverged (exit 1)."""
    from ..registry.closure.compare import EvalCompare
    from ..registry.closure.reproduce import reproduce

    evaluate = None
    if evalset is not None:
        if not runner or not prompt:
            raise ValidationError("--eval needs --runner and --prompt", field="--eval")
        if tolerance < 0:
            raise ValidationError("must be 0 or more", field="--tolerance")
        evaluate = EvalCompare(evalset, runner, prompt, tuple(scorer or ()), tolerance, limit)
    elif runner or prompt or scorer:
        raise ValidationError("--runner, --prompt and --scorer go with --eval", field="--eval")

    def progress(message: str) -> None:
        if not as_json:
            err.print(message)

    with opened() as store:
        rep = reproduce(store, digest, workdir, env_mode=env_mode,
                        pip_args=tuple(pip_arg or ()), evaluate=evaluate,
                        sink=_writer(sys.stderr), progress=progress)
    if as_json:
        print_json(rep.to_dict())
    else:
        out.print(render_reproduction(rep), end="")
    if rep.verdict == "diverged":
        raise SystemExit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(closure_app, name="closure")
