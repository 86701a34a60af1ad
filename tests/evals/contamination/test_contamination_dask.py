"""Contamination scans on a real Dask distributed cluster (a LocalCluster of two worker
processes): the report is the one a scan in a single process gives, shard for shard."""

from __future__ import annotations

import gzip
import os
import random
import socket

import orjson
import pytest

from modelward.errors import BlobCorruptError, ConfigError, ValidationError
from modelward.evals.contamination.cluster import connect
from modelward.evals.contamination.corpus import open_source, texts_source
from modelward.evals.contamination.scan import scan
from modelward.evals.contamination.shards import plan
from modelward.evals.harness.evalsets import EvalItem
from modelward.ledger import artifacts

pytestmark = pytest.mark.slow

Q1 = "What is the boiling point of water at sea level in degrees Celsius?"
Q2 = "Who wrote the play Hamlet and in which year was it first performed on stage?"
Q3 = ("The mitochondria is the powerhouse of the cell and produces most of the chemical "
      "energy needed to power the biochemical reactions of the cell")
Q4 = "Name the longest river in South America and the countries it flows through today"
Q6 = "Which element has the atomic number seventy nine and the chemical symbol Au"
ITEMS = [EvalItem("q1", Q1), EvalItem("q2", {"question": Q2}), EvalItem("q3", Q3),
         EvalItem("q4", Q4), EvalItem("q5", "Too short"), EvalItem("q6", Q6)]
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu river water cell play stage").split()


@pytest.fixture(scope="module")
def client():
    with connect(workers=2) as client:
        client.wait_for_workers(2)
        yield client


def _filler(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _planted(rng: random.Random, n: int) -> str:
    """A document that holds an eval item in one of the ways the methods find."""
    kind = rng.randrange(6)
    if kind == 0:
        return Q1  # exact
    if kind == 1:
        return Q2.upper().replace(",", "")  # exact after normalisation
    if kind == 2:
        return f"{_filler(rng, 40)} {Q3} {_filler(rng, 60)}"  # containment
    if kind == 3:
        return Q4.replace("South", "southern") + " Answer below."  # near-duplicate
    if kind == 4:
        return f"Trivia: {' '.join(Q3.split()[:14])} and more {_filler(rng, 5)}"  # ngram
    return "Too short"  # exact, of a short item


def _pool(n: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    return [_planted(rng, i) if rng.random() < 0.08 else _filler(rng, rng.randrange(3, 90))
            for i in range(n)]


def _same(client, make_sources, **options):
    """Scan in this process and on the cluster; the reports must be identical."""
    alone = scan(ITEMS, make_sources(), **options)
    sources = make_sources()
    spread = scan(ITEMS, sources, client=client, **options)
    a, b = alone.to_dict(), spread.to_dict()
    assert a.pop("seconds") >= 0 and b.pop("seconds") >= 0
    assert b == a
    return alone, sources


def test_the_cluster_is_two_worker_processes(client):
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    # started without the nanny's MALLOC_TRIM_THRESHOLD_ (it halves scan throughput)
    trim = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert set(trim.values()) == {os.environ.get("MALLOC_TRIM_THRESHOLD_")}


def test_a_large_jsonl_file_is_cut_at_lines_and_reports_the_same(client, tmp_path):
    from distributed import get_task_stream

    lines = []
    pool = _pool(3000)
    pool[2950] = f"Quiz night: {Q6}?"  # once, deep in the file
    for i, text in enumerate(pool):
        if i % 97 == 5:
            lines.append(b"")  # blank lines count in line numbers
        record = {"id": f"d{i}", "text": text} if i % 3 else {"body": [text], "id": i}
        lines.append(orjson.dumps(record))
    (tmp_path / "pool.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    shards = plan([open_source("pool.jsonl", base=tmp_path)], 16 << 10)
    assert len(shards) > 8
    for shard in shards[1:]:  # every cut follows a newline
        with open(tmp_path / "pool.jsonl", "rb") as fh:
            fh.seek(shard.start - 1)
            assert fh.read(1) == b"\n"
    with get_task_stream(client) as tasks:
        report, _ = _same(client, lambda: [open_source("pool.jsonl", base=tmp_path)],
                          shard_bytes=16 << 10, max_matches=3)
    assert report.by_method() == {"exact": 3, "near-duplicate": 1, "containment": 1,
                                  "ngram": 0}
    assert "ngram" in report.contaminated[2].best.scores
    # a match deep in the file carries the file's line number
    line = lines.index(orjson.dumps({"id": "d2950", "text": pool[2950]})) + 1
    assert [m.locator for m in report.contaminated[-1].matches] == [f"pool.jsonl:{line}"]
    assert all(h.documents > 3 for h in report.contaminated[:-1])  # ties merged in order
    ran = {t["worker"] for t in tasks.data if "modelward-contamination" in str(t["key"])}
    assert len(ran) == 2  # both workers scanned shards


def test_a_large_text_file_is_cut_after_blank_lines(client, tmp_path):
    rng = random.Random(3)
    parts = []
    for text in _pool(1500, seed=9):
        words = text.split(" ")
        cut = rng.randrange(len(words) + 1)
        paragraph = " ".join(words[:cut]) + "\n" + " ".join(words[cut:]) + "\n"
        parts.append(paragraph + rng.choice(["\n", " \n", "\n\n", "\t\n\n"]))
    (tmp_path / "notes.txt").write_text("".join(parts))
    report, sources = _same(client, lambda: [open_source("notes.txt", base=tmp_path)],
                            shard_bytes=8 << 10)
    assert len(plan(sources, 8 << 10)) > 8
    assert report.documents == 1500 and not report.clean


def test_directories_of_every_format_with_skipped_files(client, tmp_path):
    docs = tmp_path / "docs"
    (docs / "faq").mkdir(parents=True)
    pool = _pool(400, seed=11)
    (docs / "a.jsonl").write_bytes(b"".join(orjson.dumps({"text": t}) + b"\n"
                                            for t in pool[:200]))
    (docs / "faq" / "b.md").write_text("\n\n".join(pool[200:300]) + "\n")
    (docs / "c.csv").write_text("id,text\n" + "".join(f'r{i},"{t}"\n'
                                                     for i, t in enumerate(pool[300:350])))
    (docs / "d.json").write_bytes(orjson.dumps([{"text": t} for t in pool[350:390]]))
    with gzip.open(docs / "e.jsonl.gz", "wb") as fh:
        fh.write(b"".join(orjson.dumps({"text": t}) + b"\n" for t in pool[390:]))
    (docs / "logo.png").write_bytes(b"\x89PNG\x00\x00binary" * 2000)
    report, _ = _same(client, lambda: [open_source("docs", base=tmp_path)],
                      shard_bytes=4 << 10)
    assert report.sources[0]["skipped"] == ["docs/logo.png: not UTF-8 text"]
    assert report.documents == 400


def test_texts_in_memory_keep_their_owners(client):
    pool = _pool(300, seed=2)
    entries = [(f"prompt of q{i % 5 + 1}", t, [f"q{i % 5 + 1}"]) for i, t in enumerate(pool)]
    report, _ = _same(client, lambda: [texts_source("rendered", entries)],
                      shard_bytes=2 << 10)
    assert all(m.locator != f"prompt of {h.item_id}" for h in report.contaminated
               for m in h.matches)


def test_dataset_artifacts_are_read_by_the_workers_and_verified(client, ledger, tmp_path):
    store = ledger.store
    data = tmp_path / "train"
    data.mkdir()
    pool = _pool(600, seed=4)
    (data / "part-0.jsonl").write_bytes(b"".join(orjson.dumps({"text": t}) + b"\n"
                                                 for t in pool[:300]))
    (data / "part-1.txt").write_text("\n\n".join(pool[300:]) + "\n")
    folder = artifacts.register_path(store, "dataset", data, name="sft").artifact
    single = artifacts.register_path(store, "dataset", data / "part-0.jsonl",
                                     name="part").artifact
    with store.read() as conn:
        def sources():
            return [open_source(folder.digest, store=store, conn=conn),
                    open_source(single.digest, store=store, conn=conn)]

        report, _ = _same(client, sources, shard_bytes=4 << 10)
        assert report.sources[0]["digest"] == folder.digest and not report.clean
        path = store.blobs.path_of(single.digest)
        path.write_bytes(path.read_bytes().replace(b"alpha", b"omega"))
        with pytest.raises(BlobCorruptError, match="corrupt"):
            scan(ITEMS, sources(), client=client)


def test_the_first_error_in_reading_order_names_the_files_line(client, tmp_path):
    lines = [orjson.dumps({"text": t}) for t in _pool(2000, seed=6)]
    lines[1700] = b'{"text": oops}'
    lines[1900] = b"{broken"
    (tmp_path / "pool.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    paragraphs = "\n\n".join(_pool(800, seed=7)).encode() + b"\n\nbad \xff byte\n"
    (tmp_path / "notes.txt").write_bytes(paragraphs)
    bad_line = paragraphs.count(b"\n", 0, paragraphs.index(b"bad \xff")) + 1
    for name, where in (("pool.jsonl", "against: pool.jsonl:1701 is not valid JSON"),
                        ("notes.txt", f"line {bad_line}: notes.txt is not UTF-8 text")):
        with pytest.raises(ValidationError) as alone:
            scan(ITEMS, [open_source(name, base=tmp_path)])
        with pytest.raises(ValidationError) as spread:
            scan(ITEMS, [open_source(name, base=tmp_path)], client=client,
                 shard_bytes=8 << 10)
        assert alone.value.message.startswith(where)
        assert spread.value.to_dict() == alone.value.to_dict()


def test_progress_counts_bytes_and_documents(client, tmp_path):
    (tmp_path / "pool.jsonl").write_bytes(b"".join(orjson.dumps({"text": t}) + b"\n"
                                                   for t in _pool(500)))
    seen = []
    scan(ITEMS, [open_source("pool.jsonl", base=tmp_path)], client=client,
         shard_bytes=4 << 10, progress=lambda *a: seen.append(a))
    size = (tmp_path / "pool.jsonl").stat().st_size
    assert seen[0] == (0, size, 0) and seen[-1] == (size, size, 500)
    assert [s[0] for s in seen] == sorted(s[0] for s in seen) and len(seen) > 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_errors_are_clear():
    port = _free_port()
    with pytest.raises(ConfigError) as exc:
        with connect(scheduler=f"tcp://127.0.0.1:{port}"):
            pass
    assert exc.value.message == (f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port} "
                                 "(Connection refused)")
    assert "dask scheduler" in exc.value.hint
    with pytest.raises(ConfigError, match="is not a Dask scheduler address"):
        with connect(scheduler="127.0.0.1"):
            pass
    with pytest.raises(ConfigError, match="not both"):
        with connect(scheduler="tcp://127.0.0.1:1", workers=2):
            pass


def test_a_scheduler_without_workers_is_an_error():
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=":0") as cluster:
        with pytest.raises(ConfigError) as exc:
            with connect(scheduler=cluster.scheduler_address, timeout=1):
                pass
    assert exc.value.message == f"the Dask scheduler at {cluster.scheduler_address} has no " \
                                "workers"


# --- the command ---------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    (tmp_path / "ev.jsonl").write_bytes(b"".join(
        orjson.dumps({"id": it.id, "input": it.input}) + b"\n" for it in ITEMS))
    (tmp_path / "pool.jsonl").write_bytes(b"".join(
        orjson.dumps({"id": f"d{i}", "text": t}) + b"\n" for i, t in enumerate(_pool(400))))
    (tmp_path / "notes.md").write_text("\n\n".join(_pool(100, seed=8)) + "\n")
    return tmp_path


def _cli(*args):
    from tests.evals.contamination.test_contamination_cli import run

    return run("contamination", "--evalset", "ev.jsonl", "--against", "pool.jsonl",
               "notes.md", "--max-matches", "2", *args)


def test_the_command_on_a_local_cluster_prints_what_one_process_prints(files):
    alone = _cli()
    assert alone.code == 1 and alone.err == "" and "pool.jsonl:" in alone.out
    assert _cli("--workers", "2") == alone


def test_the_command_on_a_running_scheduler(client, files):
    assert _cli("--scheduler", client.scheduler.address) == _cli()
    alone = orjson.loads(_cli("--json").out)
    spread = orjson.loads(_cli("--json", "--scheduler", client.scheduler.address).out)
    assert spread.pop("seconds") >= 0 and alone.pop("seconds") >= 0
    assert spread == alone


def test_the_command_names_the_option_that_failed(files):
    port = _free_port()
    res = _cli("--scheduler", f"tcp://127.0.0.1:{port}")
    assert (res.code, res.out) == (2, "")
    assert res.err == (f"error: --scheduler: cannot reach the Dask scheduler at "
                       f"tcp://127.0.0.1:{port} (Connection refused)\n"
                       "hint: start one with `dask scheduler` (and `dask worker ADDRESS` on "
                       "each machine), or pass the address it prints\n")
    res = _cli("--scheduler", "tcp://127.0.0.1:1", "--workers", "2")
    assert (res.code, res.err) == (2, "error: --workers: choose one of --scheduler and "
                                      "--workers\n")
    res = _cli("--workers", "0")
    assert res.code == 2 and "--workers" in res.err


def test_without_dask_the_option_is_a_clear_error(files):
    import subprocess
    import sys

    # a process where `import distributed` fails, as it does without modelward[dask]
    code = ("import sys; sys.modules['distributed'] = None; "
            "from modelward.cli.app import main; main()")
    proc = subprocess.run([sys.executable, "-c", code, "contamination", "--evalset", "ev.jsonl",
                           "--against", "pool.jsonl", "--workers", "2"],
                          cwd=files, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == ("error: --workers: scanning on a Dask cluster needs "
                           "dask.distributed, which is not installed\n"
                           "hint: pip install 'modelward[dask]'\n")


def test_a_progress_bar_on_a_terminal(client, files):
    import pty
    import subprocess
    import sys
    import threading

    master, replica = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from modelward.cli.app import main; main()", "contamination",
         "--evalset", "ev.jsonl", "--against", "pool.jsonl", "--scheduler",
         client.scheduler.address], cwd=files, stdout=subprocess.PIPE, stderr=replica,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "120"})
    os.close(replica)
    seen = bytearray()

    def drain():  # read while it runs: a full pty buffer would block the child
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            seen.extend(data)

    reader = threading.Thread(target=drain)
    reader.start()
    stdout, _ = proc.communicate(timeout=120)
    reader.join(10)
    os.close(master)
    assert "scanning" in seen.decode() and "400 documents" in seen.decode()
    assert proc.returncode == 1 and stdout.decode().startswith("q1  exact 1.00")
