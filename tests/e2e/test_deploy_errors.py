"""A deploy that fails says why on its first line: the function's own
file:line and error, npm's or pip's reason, never our handler's stack frames
or a file on the daemon's host; and it points at `tinyfaas logs NAME`, which
then has the whole story."""

# e2e: both backends
import subprocess

import pytest

from conftest import BIN, REPO, zip_folder_b64

FUNCTIONS = REPO / "tests" / "functions"


def upload(d, folder: str, env: str, name: str):
    return d.upload_raw({"name": name, "env": env, "threads": 1, "zip": zip_folder_b64(FUNCTIONS / folder)})


def cli_logs(d, name: str) -> str:
    r = subprocess.run([str(BIN), "logs", name, "--url", f"http://127.0.0.1:{d.mport}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def first_line(text: str) -> str:
    return text.strip().splitlines()[0]


@pytest.mark.parametrize("folder,env,cause,code_line", [
    ("syntaxjs", "nodejs", "index.js:2: SyntaxError: missing ) after argument list", 'res.send("hello"'),
    ("syntaxpy", "python3", "fn.py:2: SyntaxError: '(' was never closed", "return str(input"),
])
def test_syntax_error_names_the_file_and_line(make_daemon, folder, env, cause, code_line):
    d = make_daemon()
    r = upload(d, folder, env, folder)
    assert r.status == 400, r.text
    line = first_line(r.text)
    assert line.startswith("function did not start: " + cause + " (instance " + folder + "."), line
    assert line.endswith(f"; see `tinyfaas logs {folder}`"), line
    assert "handler.js" not in line and "handler.py" not in line and "node:internal" not in line, line
    # The logs have the rest: the code line and the stack.
    logs = cli_logs(d, folder)
    assert code_line in logs and cause.split(": ", 1)[1] in logs, logs
    # A wipe takes a failed deploy's lines too.
    assert d.mgmt("POST", "/wipe").status == 200
    assert d.mgmt("GET", f"/logs?name={folder}").status == 404


def test_missing_local_npm_dependency_quotes_npms_reason(make_daemon):
    # A file: dependency that is not in the upload: npm's answer without any
    # registry, the same shape as a 404 from one.
    d = make_daemon()
    r = upload(d, "missingdepjs", "nodejs", "missingdepjs")
    assert r.status == 400, r.text
    line = first_line(r.text)
    assert line.startswith("installing dependencies failed (exited with status 254): npm error enoent ENOENT: "
                           "no such file or directory"), line
    assert "leftpadx-1.0.0.tgz" in line, line
    assert "A complete log of this run" not in line and "/root/.npm" not in line, line
    assert line.endswith("; see `tinyfaas logs missingdepjs`"), line
    logs = cli_logs(d, "missingdepjs")
    # Install lines carry the function's name.
    assert " missingdepjs.install npm error code ENOENT" in logs, logs


def test_unresolvable_pip_requirement_quotes_pips_reason(make_daemon):
    # An offline node: pip cannot reach any index.
    d = make_daemon(extra_args=["--offline"])
    r = upload(d, "nodistpy", "python3", "nodistpy")
    assert r.status == 400, r.text
    line = first_line(r.text)
    assert "ERROR: No matching distribution found for leftpadx==1.0.0" in line, line
    assert line.endswith("; see `tinyfaas logs nodistpy`"), line
