"""``profscope record``: real Python workloads under real py-spy, and its error paths.

Recordings need ptrace; the ``pyspy_ok`` fixture checks once whether py-spy may read a child
here and skips the recording tests with py-spy's own message when it may not.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from profscope.capture import pyspy
from profscope.capture.pyspy import PtraceDenied, RecordOptions, classify_failure, pyspy_argv
from profscope.commands.record import default_service, parse_labels
from profscope.errors import BadInput
from profscope.formats import decode

ROOT = Path(__file__).resolve().parent.parent

# One dominant function (`hot`), a minor one (`cold`), run by the main thread and by a thread
# named "crunch-worker" for a fixed wall time, then exit with argv[1].
WORKLOAD = textwrap.dedent("""\
    import sys
    import threading
    import time


    def hot():
        s = 0
        for i in range(20000):
            s += i * i
        return s


    def cold():
        return sum(range(500))


    def spin(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            hot()
            cold()


    if __name__ == "__main__":
        seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5
        t = threading.Thread(target=spin, args=(seconds,), name="crunch-worker")
        t.start()
        spin(seconds)
        t.join()
        sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    """)
HOT_LINES = {i + 1 for i, ln in enumerate(WORKLOAD.splitlines())
             if ln.strip() in ("for i in range(20000):", "s += i * i")}


def run_cli(*args: str, env: dict | None = None, exe: str = sys.executable, timeout: float = 60,
            prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``python -m profscope.cli ARGS`` as a real subprocess from the project root."""
    return subprocess.run([*prefix, exe, "-m", "profscope.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def workload(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("work") / "work.py"
    p.write_text(WORKLOAD)
    return p


@pytest.fixture(scope="module")
def pyspy_ok() -> str:
    """py-spy's path, after checking that it may read a child process on this machine."""
    try:
        exe = pyspy.find_pyspy()
    except pyspy.PySpyMissing as e:
        pytest.skip(str(e))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.3)
        r = subprocess.run([exe, "dump", "--pid", str(child.pid)], capture_output=True, text=True,
                           timeout=30, env=dict(os.environ, RUST_BACKTRACE="0"))
    finally:
        child.kill()
        child.wait()
    if r.returncode != 0:
        pytest.skip(f"py-spy cannot read a child process here (ptrace_scope={pyspy.ptrace_scope()}): "
                    f"{(r.stderr or r.stdout).strip()[:300]}")
    return exe


@pytest.fixture(scope="module")
def recorded(pyspy_ok, workload, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One 1.5 s recording of the workload, exiting 7, shared by the checks below."""
    out = tmp_path_factory.mktemp("rec") / "out.pb.gz"
    r = run_cli("record", "--rate", "200", "-o", str(out), "--", sys.executable, str(workload), "7", "1.5")
    return out, r


def top_json(*args: str) -> dict:
    r = run_cli("top", "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# ------------------------------------------------------------------ real recordings
def test_exit_code_passed_through_and_summary(recorded):
    out, r = recorded
    assert r.returncode == 7, r.stderr
    assert out.is_file()
    summary = [ln for ln in r.stderr.splitlines() if ln.startswith("profscope record:")]
    assert len(summary) == 1, r.stderr
    assert f"-> {out}" in summary[0] and "top: hot " in summary[0]


def test_hot_function_is_top(recorded):
    out, _ = recorded
    t = top_json(str(out))
    assert t["sample_type"] == "cpu" and t["unit"] == "nanoseconds"
    assert t["rows"][0]["name"] == "hot"
    assert t["rows"][0]["flat"] > t["total"] / 2
    s = top_json("--sample-type", "samples", str(out))
    # cpu = samples x period, period = 1e9 / 200 Hz
    assert t["total"] == s["total"] * 5_000_000


def test_profile_fields(recorded):
    out, _ = recorded
    p = decode(out.read_bytes())
    assert [(v.type, v.unit) for v in p.sample_types] == [("samples", "count"), ("cpu", "nanoseconds")]
    assert p.period == 5_000_000 and p.period_type == ("cpu", "nanoseconds")
    assert abs(p.time_nanos - time.time_ns()) < 600e9
    assert 1.0e9 < p.duration_nanos < 30e9


def test_line_granularity(recorded):
    out, _ = recorded
    t = top_json("--granularity", "lines", str(out))
    name = t["rows"][0]["name"]
    func, loc = name.split(" ")
    file, line = loc.rsplit(":", 1)
    assert (func, file) == ("hot", "work.py") and int(line) in HOT_LINES, name


def test_thread_names_are_labels(recorded):
    out, _ = recorded
    p = decode(out.read_bytes())
    names = {lb.str for ls in p.label_sets for lb in ls if lb.key == "thread_name"}
    assert {"MainThread", "crunch-worker"} <= names
    worker = top_json("--tagfocus", "thread_name=crunch-worker", str(out))
    everything = top_json(str(out))
    assert worker["rows"][0]["name"] == "hot"
    # pprof's total keeps every sample; the filtered rows hold only the worker thread's
    assert 0 < worker["rows"][0]["flat"] < everything["rows"][0]["flat"]


def _first_pprof_row(text: str) -> list[str]:
    lines = text.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["flat", "flat%"])
    return lines[header + 1].split()


def test_go_tool_pprof_reads_it(recorded):
    go = shutil.which("go")
    if go is None:
        pytest.skip("go (go tool pprof) not installed")
    out, _ = recorded
    r = subprocess.run([go, "tool", "pprof", "-top", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _first_pprof_row(r.stdout)[-1] == "hot"
    r = subprocess.run([go, "tool", "pprof", "-top", "-lines", str(out)], capture_output=True, text=True,
                       timeout=120)
    first = _first_pprof_row(r.stdout)
    assert first[-2] == "hot" and first[-1].rsplit(":", 1)[0] == "work.py"
    assert int(first[-1].rsplit(":", 1)[1]) in HOT_LINES


def test_attach_to_pid(pyspy_ok, workload, tmp_path):
    target = subprocess.Popen([sys.executable, str(workload), "0", "4"])
    try:
        time.sleep(0.3)
        out = tmp_path / "pid.pb.gz"
        r = run_cli("record", "--pid", str(target.pid), "--duration", "1", "-o", str(out))
        assert r.returncode == 0, r.stderr
        assert target.poll() is None, "profscope record --pid must not stop the process"
        assert top_json(str(out))["rows"][0]["name"] == "hot"
    finally:
        target.kill()
        target.wait()


def test_duration_stops_the_command(pyspy_ok, workload, tmp_path):
    out = tmp_path / "d.pb.gz"
    t0 = time.monotonic()
    r = run_cli("record", "--duration", "1", "-o", str(out), "--", sys.executable, str(workload), "5", "20")
    assert time.monotonic() - t0 < 15
    assert r.returncode == 0, r.stderr     # stopped by profscope: not the command's own exit
    assert "stopped at --duration" in r.stderr
    assert top_json(str(out))["rows"][0]["name"] == "hot"


def test_subprocesses_keep_pid_and_cmdline(pyspy_ok, workload, tmp_path):
    # the child's command line holds ';' and a newline, which py-spy writes unescaped
    code = f"import runpy; import sys\nsys.argv = ['work.py', '0', '1.2']; runpy.run_path({str(workload)!r}, run_name='__main__')"
    parent = tmp_path / "parent.py"
    parent.write_text(f"import os, subprocess, sys\nprint(os.getpid(), flush=True)\n"
                      f"sys.exit(subprocess.call([sys.executable, '-c', {code!r}]))\n")
    out = tmp_path / "sub.pb.gz"
    r = run_cli("record", "--subprocesses", "-o", str(out), "--", sys.executable, str(parent))
    assert r.returncode == 0, r.stderr
    p = decode(out.read_bytes())
    assert not p.warnings
    cmdlines = {lb.str for ls in p.label_sets for lb in ls if lb.key == "cmdline"}
    child_cmd = next(c for c in cmdlines if "runpy" in c)
    assert "\n" not in child_cmd and "; import sys" in child_cmd
    t = top_json("--tagfocus", f"cmdline={child_cmd.split(';')[0]}.*", str(out))
    assert t["rows"][0]["name"] == "hot"
    child_pids = {lb.str for ls in p.label_sets if ("cmdline", child_cmd) in [(x.key, x.str) for x in ls]
                  for lb in ls if lb.key == "pid"}
    assert len(child_pids) == 1 and r.stdout.split()[0] not in child_pids  # stdout: the parent's pid
    assert all(sum(lb.key == "pid" for lb in ls) <= 1 for ls in p.label_sets)


def test_record_into_data_dir(pyspy_ok, workload, tmp_path):
    from profscope.query.selector import Selection
    from profscope.store import Store
    data = tmp_path / "data"
    r = run_cli("record", "--data-dir", str(data), "--label", "commit=abc123", "--",
                sys.executable, str(workload), "0", "1")
    assert r.returncode == 0, r.stderr
    store = Store(str(data))
    try:
        ss = store.select(Selection.from_query('cpu{service_name="work", commit="abc123"}'))
        assert ss.total > 0
        from profscope.analysis.top import top_table
        assert top_table(ss).names[0] == "hot"
    finally:
        store.close()


def test_record_without_cap_sys_ptrace(pyspy_ok, workload, tmp_path):
    """Starting the command needs no CAP_SYS_PTRACE (py-spy reads its sibling, same user)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to drop CAP_SYS_PTRACE")
    out = tmp_path / "nocap.pb.gz"
    r = run_cli("record", "-o", str(out), "--", sys.executable, str(workload), "3", "1",
                prefix=(setpriv, "--bounding-set", "-sys_ptrace"))
    assert r.returncode == 3, r.stderr
    assert top_json(str(out))["rows"][0]["name"] == "hot"


def test_sigterm_is_forwarded_and_the_profile_kept(pyspy_ok, workload, tmp_path):
    out = tmp_path / "term.pb.gz"
    proc = subprocess.Popen([sys.executable, "-m", "profscope.cli", "record", "-o", str(out), "--",
                             sys.executable, str(workload), "0", "20"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err   # the command died of the forwarded SIGTERM
    assert top_json(str(out))["rows"][0]["name"] == "hot"


def test_ctrl_c_reaches_command_and_py_spy(pyspy_ok, workload, tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C: the profile is still written.
    (The command's main thread stops at once; Python then waits for its worker thread, ~3 s.)"""
    out = tmp_path / "int.pb.gz"
    proc = subprocess.Popen([sys.executable, "-m", "profscope.cli", "record", "-o", str(out), "--",
                             sys.executable, str(workload), "0", "3"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGINT, err    # Python re-raises an unhandled SIGINT
    assert "KeyboardInterrupt" in err
    assert top_json(str(out))["rows"][0]["name"] == "hot"


def test_progress_only_on_a_terminal(pyspy_ok, workload, tmp_path, recorded):
    master, slave = os.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "profscope.cli", "record", "-o", str(tmp_path / "p.pb.gz"),
                            "--", sys.executable, str(workload), "0", "1.2"], cwd=ROOT, stderr=slave,
                           stdout=subprocess.DEVNULL, timeout=60)
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:   # EIO: the terminal has no writer left
                break
            if not data:
                break
            chunks.append(data)
        tty = b"".join(chunks).decode()
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert r.returncode == 0
    assert "\r\x1b[Kprofscope record: python" in tty and "samples at 100 Hz (Ctrl-C stops)" in tty
    assert "top: hot" in tty
    _, piped = recorded      # stderr to a pipe: no progress, only the summary
    assert "\x1b[K" not in piped.stderr and "Ctrl-C stops" not in piped.stderr


# ------------------------------------------------------------------ error paths
def test_command_not_found(tmp_path):
    r = run_cli("record", "-o", str(tmp_path / "x.pb.gz"), "--", "no-such-command-4711")
    assert r.returncode == 2
    assert "command not found: 'no-such-command-4711'" in r.stderr
    assert not (tmp_path / "x.pb.gz").exists()


def test_exits_before_first_sample(pyspy_ok, tmp_path):
    # Python rejects the option and exits 2 before its interpreter exists: nothing to sample
    r = run_cli("record", "-o", str(tmp_path / "x.pb.gz"), "--", sys.executable, "--no-such-option")
    assert r.returncode == 3, r.stderr
    assert "exited with exit code 2 before py-spy took its first sample" in r.stderr
    assert not (tmp_path / "x.pb.gz").exists()


def test_not_a_python_program(pyspy_ok, tmp_path):
    sleep = shutil.which("sleep")
    if sleep is None:
        pytest.skip("no sleep(1)")
    r = run_cli("record", "-o", str(tmp_path / "x.pb.gz"), "--", sleep, "5")
    assert r.returncode == 2, r.stderr
    assert "is not running Python" in r.stderr and "--subprocesses" in r.stderr


def test_pyspy_missing(tmp_path, workload):
    # a python reached through a symlink has no py-spy beside it; PATH holds none either
    link_dir = tmp_path / "bin"
    link_dir.mkdir()
    (link_dir / "python3").symlink_to(sys.executable)
    path = os.pathsep.join(d for d in ("/usr/bin", "/bin") if os.path.isdir(d))
    assert shutil.which("py-spy", path=path) is None
    env = dict(os.environ, PATH=path)
    r = run_cli("record", "-o", str(tmp_path / "x.pb.gz"), "--", sys.executable, str(workload),
                exe=str(link_dir / "python3"), env=env)
    assert r.returncode == 3, r.stderr
    assert "py-spy not found" in r.stderr and "pip install py-spy" in r.stderr


def test_ptrace_refused(pyspy_ok, workload, tmp_path):
    """Attaching to a process with more privileges than profscope: py-spy is refused."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to drop CAP_SYS_PTRACE from profscope only")
    target = subprocess.Popen([sys.executable, str(workload), "0", "10"])
    try:
        time.sleep(0.2)
        r = run_cli("record", "--pid", str(target.pid), "-o", str(tmp_path / "x.pb.gz"),
                    prefix=(setpriv, "--bounding-set", "-sys_ptrace"))
    finally:
        target.send_signal(signal.SIGKILL)
        target.wait()
    assert r.returncode == 3, r.stderr
    assert "ptrace permission denied" in r.stderr
    assert "--cap-add SYS_PTRACE" in r.stderr and "kernel.yama.ptrace_scope" in r.stderr


def test_no_such_pid(tmp_path):
    pid = 2 ** 22 + 12345     # above the default pid_max of 4194304
    r = run_cli("record", "--pid", str(pid), "-o", str(tmp_path / "x.pb.gz"))
    assert r.returncode == 2 and f"no process with pid {pid}" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--", "python3"], "exactly one destination"),
    (["-o", "a.pb.gz", "--data-dir", "d", "--", "python3"], "exactly one destination"),
    (["-o", "a.pb.gz"], "no command given"),
    (["-o", "a.pb.gz", "--pid", "1", "--", "python3"], "either --pid or a COMMAND"),
    (["-o", "/no/such/dir/a.pb.gz", "--", "python3"], "does not exist"),
    (["-o", "a.pb.gz", "--label", "bad label", "--", "python3"], "is not NAME=VALUE"),
    (["-o", "a.pb.gz", "--rate", "0", "--", "python3"], "--rate"),
])
def test_usage_errors(args, message, capsys):
    from profscope.cli import main
    with pytest.raises(SystemExit) as e:
        main(["record", *args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------ units
def test_classify_py_spy_messages():
    # py-spy 0.4.3's words when /proc/PID/exe may not be read (seen with CAP_SYS_PTRACE dropped)
    log = ("Error: Failed to get process executable name. Check that the process is running.\n\n"
           "Caused by:\n    0: Permission denied (os error 13)\n")
    err = classify_failure(log, 42, 1, target_exited=False)
    assert isinstance(err, PtraceDenied) and err.exit_code == 3 and "process 42" in err.message
    err = classify_failure("Error: Failed to find python version from target process\n", 42, 1, False)
    assert isinstance(err, BadInput) and "not running Python" in err.message
    err = classify_failure("Error: Failed to find python version from target process\n", 42, 1, True, 9)
    assert isinstance(err, pyspy.NoSamples) and "exit code 9" in err.message
    err = classify_failure("Error: something new\n", 42, 101, False)
    assert err.exit_code == 3 and "exit 101" in err.message and "something new" in err.message


def test_pyspy_argv_flags():
    argv = pyspy_argv("py-spy", "/t/o", 9, RecordOptions(rate=250, duration=3, idle=True, gil=True,
                                                          native=True, subprocesses=True, threads=False,
                                                          nonblocking=True))
    assert argv[:2] == ["py-spy", "record"]
    i = argv.index
    assert argv[i("--format") + 1] == "raw" and argv[i("--rate") + 1] == "250"
    assert argv[i("--pid") + 1] == "9" and argv[i("--duration") + 1] == "3"
    assert {"--idle", "--gil", "--native", "--subprocesses", "--nonblocking"} <= set(argv)
    assert "--threads" not in argv
    assert "--threads" in pyspy_argv("py-spy", "/t/o", 9, RecordOptions())


def test_default_service_and_labels():
    assert default_service(("python3", "-u", "bench/run.py", "--n", "3"), None) == "run"
    assert default_service(("python3", "-m", "pytest", "-q"), None) == "pytest"
    assert default_service(("/usr/bin/gunicorn", "app:app"), None) == "gunicorn"
    assert default_service((), 17) == "pid-17"
    assert parse_labels(("a=1", "b.c=x=y")) == {"a": "1", "b.c": "x=y"}
    with pytest.raises(BadInput):
        parse_labels(("1a=2",))


# ------------------------------------------------------------------ --server
def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real ``profscope serve`` on 127.0.0.1 whose label values may be 20 characters at most."""
    from conftest import serve_process
    with serve_process(tmp_path_factory.mktemp("srv"), env={"PROFSCOPE_MAX_LABEL_VALUE_LEN": "20"}) as url:
        yield url


def test_record_to_server(pyspy_ok, workload, server):
    import urllib.parse
    import urllib.request
    r = run_cli("record", "--server", server, "--service", "bench", "--label", "commit=abc",
                "--", sys.executable, str(workload), "4", "1")
    assert r.returncode == 4, r.stderr
    assert f"-> {server} (profile" in r.stderr
    q = urllib.parse.urlencode({"query": 'cpu{service_name="bench", commit="abc"}'})
    body = json.loads(urllib.request.urlopen(f"{server}/api/v1/top?{q}", timeout=30).read())
    assert body["rows"][0]["name"] == "hot"


def test_failed_upload_keeps_the_recording(pyspy_ok, workload, server):
    # valid here (values up to 2048 chars), refused by this server (20): the profile is kept
    r = run_cli("record", "--server", server, "--label", "note=" + "x" * 30, "--",
                sys.executable, str(workload), "0", "1")
    assert r.returncode == 2, r.stderr
    assert "server answered 413" in r.stderr
    kept = r.stderr.split("the recording was saved to ")[1].split(" ")[0]
    try:
        assert top_json(kept)["rows"][0]["name"] == "hot"
    finally:
        os.unlink(kept)


def test_unreachable_server_fails_before_recording(tmp_path):
    port = _free_port()
    t0 = time.monotonic()
    r = run_cli("record", "--server", f"http://127.0.0.1:{port}", "--", sys.executable, "-c",
                "import time; time.sleep(30)")
    assert r.returncode == 3 and "cannot reach" in r.stderr
    assert time.monotonic() - t0 < 20


# ------------------------------------------------------------------ the CI recipe
BENCH = """\
import time


def parse():
    s = 0
    for i in range(2000):
        s += i
    return s


def render():
    s = 0
    for i in range({render}):
        s += i
    return s


end = time.monotonic() + 0.8
while time.monotonic() < end:
    parse()
    render()
"""


def test_ci_recipe_catches_a_regression(pyspy_ok, tmp_path):
    """.ci/profile-diff on a real git repo whose HEAD makes render() three times slower."""
    from profscope.cli import COMMANDS
    if "diff" not in COMMANDS:
        pytest.skip("profscope diff is not in this build")
    git = shutil.which("git")
    if git is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", PROFSCOPE=f"{sys.executable} -m profscope.cli",
               PYTHONPATH=str(ROOT))

    def sh(*args):
        subprocess.run(args, cwd=repo, env=env, check=True, capture_output=True)
    sh(git, "init", "-q", "-b", "main")
    (repo / "bench.py").write_text(BENCH.format(render=2000))
    sh(git, "add", "bench.py")
    sh(git, "commit", "-qm", "base")
    sh(git, "checkout", "-qb", "feature")
    (repo / "bench.py").write_text(BENCH.format(render=6000))
    sh(git, "commit", "-qam", "slower render")
    r = subprocess.run([str(ROOT / ".ci" / "profile-diff"), "-b", "main", "-n", "3", "-o", "prof", "--",
                        sys.executable, "bench.py"], cwd=repo, env=env, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 1, r.stdout + r.stderr
    assert len(list((repo / "prof" / "base").glob("*.pb.gz"))) == 3
    assert "render" in (repo / "prof" / "report.md").read_text()
    assert subprocess.run([git, "worktree", "list"], cwd=repo, capture_output=True, text=True
                          ).stdout.count("\n") == 1, "the base worktree is removed afterwards"
