"""One-time dashboard log-in codes on every backend, and ``modelward login-url``."""

from __future__ import annotations

import re
import subprocess
import sys

from typer.testing import CliRunner

from modelward.cli.app import app
from modelward.ledger import login_codes, tokens
from modelward.timefmt import now_us

MIN = 60_000_000


def test_a_code_is_exchanged_once_for_a_session_token(ledger):
    store = ledger.store
    with store.write() as conn:
        code, expires = login_codes.create(conn, role="approver", email="bob@example.com")
    assert code.startswith("mwl_") and 9 * MIN < expires - now_us() <= 10 * MIN
    with store.write() as conn:
        token, secret = login_codes.redeem(conn, code)
    assert (token.role, token.email, token.name) == ("approver", "bob@example.com",
                                                     "dashboard session")
    with store.read() as conn:
        assert tokens.authenticate(conn, secret) == token
        assert tokens.authenticate(conn, code) is None  # a code is not a token
    with store.write() as conn:
        assert login_codes.redeem(conn, code) is None  # single use
        assert login_codes.redeem(conn, "mwl_unknown") is None
        assert login_codes.redeem(conn, secret) is None


def test_an_expired_code_is_refused_and_bad_requests_are_named(ledger):
    store = ledger.store
    t = now_us()
    with store.write() as conn:
        code, _ = login_codes.create(conn, ttl=MIN, now=t - 2 * MIN)
    with store.write() as conn:
        assert login_codes.redeem(conn, code) is None
    import pytest

    from modelward.errors import ValidationError

    with store.write() as conn:
        with pytest.raises(ValidationError, match="unknown role 'root'") as exc:
            login_codes.create(conn, role="root")
        assert exc.value.field == "role"
        with pytest.raises(ValidationError) as exc:
            login_codes.create(conn, ttl=25 * 60 * MIN)
        assert exc.value.field == "ttl"


def test_login_url_command_prints_one_link(tmp_path):
    runner = CliRunner()
    home = str(tmp_path / "home")
    assert runner.invoke(app, ["--home", home, "init"]).exit_code == 0
    res = runner.invoke(app, ["--home", home, "login-url", "--url", "http://127.0.0.1:9000/",
                              "--email", "Bob@Example.com"])
    assert res.exit_code == 0, res.output
    assert re.fullmatch(r"http://127\.0\.0\.1:9000/login\?code=mwl_[\w-]{32}\n", res.output)
    res = runner.invoke(app, ["--home", home, "login-url", "--json", "--role", "admin",
                              "--ttl", "1h", "--email", "ops@example.com"])
    assert res.exit_code == 0 and '"role": "admin"' in res.output
    for args, message in ((["--url", "localhost:9000"], "--url: not an http(s) URL: "
                           "'localhost:9000'"), (["--ttl", "forever"], "--ttl: not a duration: 'forever'"),
                          (["--email", "bob"], "--email: not an e-mail address: 'bob'")):
        bad = subprocess.run([sys.executable, "-m", "modelward.cli.app", "--home", home,
                              "login-url", *args], capture_output=True, text=True)
        assert bad.returncode == 2 and bad.stdout == ""
        assert bad.stderr.splitlines()[0] == f"error: {message}", bad.stderr
