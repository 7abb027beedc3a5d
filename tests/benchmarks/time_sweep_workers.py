"""Timing: one `doclab sweep` worker running 2 trials against two workers (two clones) running 1 each,
on one shared PostgreSQL study, the tiny profile, the setup of tests/test_sweep_shared.py.

    uv run python tests/benchmarks/time_sweep_workers.py /tmp/empty-folder

Needs the PostgreSQL server binaries (see tests/postgres_server.py). Prints the seconds of each.
"""
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dvc_repo import dvc, env, make_repo, run
from postgres_server import postgres_server
from test_sweep_shared import SPACE, clone

def sweep(space, where, name, url, trials):
    cmd = [sys.executable, "-m", "doclab.cli", "sweep", str(space), "--trials", str(trials), "--name", name,
           "--storage", url, "--push", "origin", "--sampler", "random", "--prune", "none"]
    return subprocess.Popen(cmd, cwd=where, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def main() -> None:
    root = Path(sys.argv[1]); root.mkdir(parents=True)
    t = time.monotonic()
    repo = make_repo(root / "repo"); dvc("repro", cwd=repo); run(["git", "add", "-A"], repo); run(["git", "commit", "-qm", "b"], repo)
    print(f"baseline {time.monotonic() - t:.0f} s", flush=True)
    store, bare = root / "store", root / "origin.git"
    dvc("remote", "add", "--local", "-f", "s", str(store), cwd=repo); dvc("push", "-r", "s", cwd=repo)
    run(["git", "clone", "-q", "--bare", str(repo), str(bare)], root)
    space = root / "space.yaml"; space.write_text(SPACE)

    with postgres_server() as url:
        one = clone(bare, root / "one", store)
        t = time.monotonic(); p = sweep(space, one, "solo", url, 2); out = p.communicate()[0]
        print(f"one worker, 2 trials: {time.monotonic() - t:.0f} s rc {p.returncode}\n{out[-600:]}", flush=True)
        a, b = clone(bare, root / "a", store), clone(bare, root / "b", store)
        t = time.monotonic(); ps = [sweep(space, c, "pair", url, 2) for c in (a, b)]; outs = [p.communicate()[0] for p in ps]
        print(f"two workers, 1 trial each: {time.monotonic() - t:.0f} s rc {[p.returncode for p in ps]}\n{outs[0][-400:]}", flush=True)


if __name__ == "__main__":
    main()
