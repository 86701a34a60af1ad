"""Blob store backends: obstore vs fsspec vs each backend's raw client, side by side.

What modelward's blob store does with an object store, measured for the two candidate
libraries and against the raw client of each backend (the limit):

* a checkpoint of ``--size`` bytes (default 2 GiB, random, generated in a temp dir): put
  (streamed from the file, multipart), get (streamed to a file) and verify (streamed
  through SHA-256, nothing kept);
* ``--prompts`` small prompts (default 10,000, 200-2,000 bytes): put each, get each, verify
  each (get + SHA-256), one request after another as registration and loading do.

Backends: ``s3`` — a local S3-compatible server (moto's standalone server, started here on
a free port; every client speaks HTTP to it), and ``local`` — a directory on this disk.
Clients: ``obstore`` (one Rust client for s3/gs/az/local), ``fsspec`` (s3fs over
aiobotocore for S3, its LocalFileSystem locally), and the raw clients ``boto3`` (S3) and
``python`` (open/read/write). When modelward's own store is importable it is measured too
(``modelward``: ``ledger.blobs`` on the same backend, verifying on every read).

Figures (one JSON line each, medians of ``--repeats``): ``big_put_mb_per_s``,
``big_get_mb_per_s``, ``big_verify_mb_per_s``, ``small_put_per_s``, ``small_get_per_s``,
``small_verify_per_s``, each with ``backend`` and ``client``. moto is a Python server:
its own CPU bounds the S3 figures, which is why the raw client is measured beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import _common as c

BENCH = "blobstore"
CHUNK = 8 << 20
PART = 16 << 20  # multipart part size used by every client
BUCKET = "mw-bench"


# --- the S3-compatible server ------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench",
               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
        os.environ.update(env)
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


# --- clients: put_file, get_file, verify, put, get, delete ---------------------------------
def _sha(chunks) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


class Obstore:
    name = "obstore"

    def __init__(self, backend: str, root: Path | None) -> None:
        import obstore
        from obstore.store import LocalStore, from_url

        self.ob = obstore
        options = {"timeout": "1800s", "connect_timeout": "30s",  # as modelward's store
                   "allow_http": True}
        self.store = (from_url(f"s3://{BUCKET}/obstore", client_options=options)
                      if backend == "s3"
                      else LocalStore(str(root), mkdir=True))

    def put_file(self, key, path):
        with open(path, "rb") as fh:
            self.ob.put(self.store, key, fh, chunk_size=PART)

    def get_file(self, key, path):
        with open(path, "wb") as out:
            for chunk in self.ob.get(self.store, key).stream(min_chunk_size=CHUNK):
                out.write(chunk)

    def verify(self, key):
        return _sha(self.ob.get(self.store, key).stream(min_chunk_size=CHUNK))

    def put(self, key, data):
        self.ob.put(self.store, key, data)

    def get(self, key):
        return bytes(self.ob.get(self.store, key).bytes())

    def delete(self, key):
        self.ob.delete(self.store, key)


class Fsspec:
    name = "fsspec"

    def __init__(self, backend: str, root: Path | None) -> None:
        import fsspec

        if backend == "s3":
            # the same generous timeouts as obstore gets: a loaded server assembling a 2 GB
            # multipart upload answers slowly, and botocore's 60 s read timeout cuts it off
            self.fs = fsspec.filesystem("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                                        default_block_size=PART,
                                        config_kwargs={"read_timeout": 1800,
                                                       "connect_timeout": 30,
                                                       "retries": {"max_attempts": 1}})
            self.base = f"{BUCKET}/fsspec"
        else:
            self.fs = fsspec.filesystem("file", auto_mkdir=True)
            self.base = str(root)

    def _p(self, key):
        return f"{self.base}/{key}"

    def put_file(self, key, path):
        self.fs.put_file(str(path), self._p(key))

    def get_file(self, key, path):
        self.fs.get_file(self._p(key), str(path))

    def verify(self, key):
        with self.fs.open(self._p(key), "rb", block_size=CHUNK) as fh:
            return _sha(iter(lambda: fh.read(CHUNK), b""))

    def put(self, key, data):
        self.fs.pipe_file(self._p(key), data)

    def get(self, key):
        return self.fs.cat_file(self._p(key))

    def delete(self, key):
        self.fs.rm_file(self._p(key))


class Boto3:
    name = "boto3"

    def __init__(self, backend: str, root: Path | None) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.s3 = boto3.client("s3", config=Config(read_timeout=1800, connect_timeout=30))
        self.cfg = TransferConfig(multipart_chunksize=PART, multipart_threshold=PART)

    def put_file(self, key, path):
        self.s3.upload_file(str(path), BUCKET, f"boto3/{key}", Config=self.cfg)

    def get_file(self, key, path):
        self.s3.download_file(BUCKET, f"boto3/{key}", str(path), Config=self.cfg)

    def verify(self, key):
        body = self.s3.get_object(Bucket=BUCKET, Key=f"boto3/{key}")["Body"]
        return _sha(body.iter_chunks(CHUNK))

    def put(self, key, data):
        self.s3.put_object(Bucket=BUCKET, Key=f"boto3/{key}", Body=data)

    def get(self, key):
        return self.s3.get_object(Bucket=BUCKET, Key=f"boto3/{key}")["Body"].read()

    def delete(self, key):
        self.s3.delete_object(Bucket=BUCKET, Key=f"boto3/{key}")


class Python:
    name = "python"

    def __init__(self, backend: str, root: Path | None) -> None:
        self.root = root

    def _p(self, key) -> Path:
        return self.root / key

    def put_file(self, key, path):
        dest = self._p(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)

    def get_file(self, key, path):
        shutil.copyfile(self._p(key), path)

    def verify(self, key):
        with open(self._p(key), "rb") as fh:
            return _sha(iter(lambda: fh.read(CHUNK), b""))

    def put(self, key, data):
        dest = self._p(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)

    def get(self, key):
        return self._p(key).read_bytes()

    def delete(self, key):
        self._p(key).unlink()


class Modelward:
    """modelward's own blob store on the same backend: content-addressed, so keys are
    digests, and every read (get, verify, copy) rehashes."""

    name = "modelward"

    def __init__(self, backend: str, root: Path | None) -> None:
        from modelward.ledger.blobs import open_blob_store

        url = f"s3://{BUCKET}/modelward" if backend == "s3" else str(root)
        self.blobs = open_blob_store(url, cache_dir=Path(tempfile.mkdtemp(prefix="mw-cache-")))
        self.digests: dict[str, str] = {}

    def put_file(self, key, path):
        self.digests[key] = self.blobs.put_file(Path(path))

    def get_file(self, key, path):
        self.blobs.copy_to(self.digests[key], Path(path))

    def verify(self, key):
        status = self.blobs.verify(self.digests[key])
        assert status == "present", status
        return status

    def put(self, key, data):
        self.digests[key] = self.blobs.put_bytes(data)

    def get(self, key):
        return self.blobs.get(self.digests[key])

    def delete(self, key):
        self.blobs.delete(self.digests[key])


CLIENTS = {"s3": [Obstore, Fsspec, Boto3, Modelward],
           "local": [Obstore, Fsspec, Python, Modelward]}


# --- measuring ------------------------------------------------------------------------
def make_checkpoint(path: Path, size: int) -> None:
    rnd = random.Random(7)
    left = size
    with open(path, "wb") as fh:
        while left:
            n = min(left, 64 << 20)
            fh.write(rnd.randbytes(n))
            left -= n


def make_prompts(n: int) -> list[bytes]:
    rnd = random.Random(11)
    words = ["answer", "the", "customer", "politely", "cite", "sources", "{{ question }}",
             "refund", "policy", "context", "do", "not", "invent", "numbers", "be", "brief"]
    out = []
    for i in range(n):
        k = rnd.randint(30, 300)
        out.append((f"prompt {i}: " + " ".join(rnd.choice(words) for _ in range(k))).encode())
    return out


def bench_client(cls, backend, root, checkpoint, size, prompts, repeats, emit):
    try:
        client = cls(backend, root / cls.name if root else None)
    except ImportError as exc:
        c.note(f"{backend}/{cls.name}: skipped ({exc})")
        return
    mb = size / 1e6
    figures: dict[str, list[float]] = {k: [] for k in (
        "big_put_mb_per_s", "big_get_mb_per_s", "big_verify_mb_per_s", "small_put_per_s",
        "small_get_per_s", "small_verify_per_s")}
    want = hashlib.sha256(checkpoint.read_bytes()).hexdigest() if size <= 64 << 20 else None
    scratch = Path(tempfile.mkdtemp(prefix="mw-bench-get-"))
    try:
        for rep in range(repeats):
            c.note(f"{backend}/{cls.name}: repeat {rep + 1}/{repeats}")
            key = f"big-{rep}"
            figures["big_put_mb_per_s"].append(mb / c.timed(
                lambda k=key: client.put_file(k, checkpoint)))
            out = scratch / "got.bin"
            figures["big_get_mb_per_s"].append(mb / c.timed(
                lambda k=key, o=out: client.get_file(k, o)))
            if out.stat().st_size != size:
                raise AssertionError(f"{cls.name} got {out.stat().st_size} bytes")
            out.unlink()
            got = []
            figures["big_verify_mb_per_s"].append(mb / c.timed(
                lambda k=key, g=got: g.append(client.verify(k))))
            if want is not None and cls is not Modelward:
                assert got[0] == want
            client.delete(key)
            keys = [f"p{rep}/{i:05d}" for i in range(len(prompts))]
            n = len(prompts)
            figures["small_put_per_s"].append(n / c.timed(
                lambda ks=keys: [client.put(k, p) for k, p in zip(ks, prompts, strict=True)]))
            figures["small_get_per_s"].append(n / c.timed(
                lambda ks=keys: [client.get(k) for k in ks]))
            figures["small_verify_per_s"].append(n / c.timed(
                lambda ks=keys: [hashlib.sha256(client.get(k)).hexdigest() for k in ks]
                if cls is not Modelward else [client.verify(k) for k in ks]))
            for k in keys:
                client.delete(k)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for figure, values in figures.items():
        unit = "MB/s" if "mb_per_s" in figure else "1/s"
        emit(BENCH, figure, c.median(values), unit, backend=backend, client=cls.name,
             bytes=size if figure.startswith("big") else None,
             objects=len(prompts) if figure.startswith("small") else None,
             **c.spread(values))


def main(argv=None) -> int:
    # a terminated run still stops its S3 server and removes its scratch (finally clauses)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2 << 30, help="checkpoint bytes (2 GiB)")
    ap.add_argument("--prompts", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backend", action="append", choices=sorted(CLIENTS))
    ap.add_argument("--client", action="append", help="only these clients")
    ap.add_argument("--quick", action="store_true", help="64 MiB, 300 prompts, 1 repeat")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.prompts, args.repeats = 64 << 20, 300, 1
    tmp = Path(tempfile.mkdtemp(prefix="mw-bench-blobs-"))
    try:
        checkpoint = tmp / "checkpoint.bin"
        c.note(f"writing a {args.size / 2**30:.2f} GiB checkpoint in {tmp}")
        make_checkpoint(checkpoint, args.size)
        prompts = make_prompts(args.prompts)
        for backend in args.backend or ["s3", "local"]:
            clients = [k for k in CLIENTS[backend]
                       if not args.client or k.name in args.client]
            ctx = moto_server() if backend == "s3" else contextlib.nullcontext()
            with ctx:
                for cls in clients:
                    root = tmp / "local" if backend == "local" else None
                    try:
                        bench_client(cls, backend, root, checkpoint, args.size, prompts,
                                     args.repeats, c.emit)
                    except Exception as exc:  # one client failing says so, the rest run
                        c.note(f"{backend}/{cls.name}: FAILED {str(exc).splitlines()[0]}")
                        c.emit(BENCH, "failed", 1, "", backend=backend, client=cls.name,
                               error=str(exc).splitlines()[0][:300])
                    if root is not None:
                        shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
