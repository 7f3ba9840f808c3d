"""Two `sweeper launch` (and two `sweeper resume`) of one sweep started at the same moment, N rounds each, on local
disk and on S3 (moto's server on localhost, as the tests use): every round exactly one must run, to its end, and the
other exit 2 with one line naming the holder's pid.

Both processes run the real command and wait at a barrier right before taking the lock (tests/store/test_lock_race.py
`race`, $SWEEPER_TEST_LOCK_RACE), so they try at once. Here the winner is not stopped: it runs its sweep to the end
(exit 0), and then the sweep is checked: a launch's trials all come from one Ray experiment and sweep.json has one
session; each resume round adds exactly one session to a finished sweep launched for them.

    .venv/bin/python -m benchmarks.lock_race [--rounds 20] [--storage local|s3|both]

Needs $SWEEPER_DATA_DIR (Fashion-MNIST) and moto[server] (a dev dependency). Prints the counts per scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sweeper.store.storage import Storage
from tests.cli.duo import SPACE, sweeper
from tests.store.test_lock_race import race


def s3_env() -> tuple[dict[str, str], str, object]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    os.environ.update(env)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(key, None)
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="sweeper-lock-race")
    return dict(os.environ), "s3://sweeper-lock-race/runs", server


def sessions(storage: str, name: str) -> int:
    text = Storage.parse(storage).folder(name).read_text("sweep.json")
    return len(json.loads(text or "{}").get("sessions") or [])


def experiments_of_trials(storage: str, name: str) -> set[str]:
    data = Storage.parse(storage).folder(name).read_bytes("trials.parquet")
    assert data is not None, f"{storage}/{name}: no trials.parquet"
    ids = pq.read_table(pa.BufferReader(data)).column("trial_id").to_pylist()
    return {str(t).split("_")[0] for t in ids}


def scenario(label: str, kind: str, storage: str, env: dict[str, str], space: Path, work: Path,
             rounds: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    data = os.environ["SWEEPER_DATA_DIR"]
    for i in range(rounds):
        t0 = time.monotonic()
        name = f"launch-{i}" if kind == "launch" else "resumed"
        if kind == "resume" and i == 0 and not sessions(storage, name):  # the sweep the resume rounds resume
            made = subprocess.run(sweeper("launch", str(space), "--storage", storage, "--name", name, "--data-dir",
                                          data), env=env, capture_output=True, text=True)
            assert made.returncode == 0, made.stdout + made.stderr
        before = sessions(storage, name) if kind == "resume" else 0
        cmd = (sweeper("launch", str(space), "--storage", storage, "--name", name, "--data-dir", data)
               if kind == "launch" else sweeper("resume", name, "--storage", storage))
        try:
            outcome = race([cmd, cmd], env, work / f"{kind}-{label}-{i}", release_at_once=True)
        except AssertionError as exc:
            counts["FAILED: " + str(exc).splitlines()[0][:120]] += 1
            print(f"{kind} on {label} round {i}: FAILED\n{exc}", file=sys.stderr, flush=True)
            continue
        code, output = outcome.finish(kill=False)
        if code != 0:
            counts[f"FAILED: the winner ended with {code}"] += 1
            print(output[-3000:], file=sys.stderr)
            continue
        after = sessions(storage, name)
        experiments = experiments_of_trials(storage, name)
        if after != before + 1 or len(experiments) != 1:
            counts[f"FAILED: sessions {before}->{after}, trials of experiments {sorted(experiments)}"] += 1
            continue
        counts["one ran to the end, the other exit 2 naming it"] += 1
        print(f"{kind} on {label} round {i}: ok in {time.monotonic() - t0:.1f}s ({outcome.loser_output[:100]}...)",
              flush=True)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--storage", choices=["local", "s3", "both"], default="both")
    parser.add_argument("--kind", choices=["launch", "resume", "both"], default="both")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lock-race-"))
    os.environ.setdefault("SWEEPER_CACHE_DIR", str(work / "cache"))
    space = work / "duo.yaml"
    space.write_text(SPACE)
    targets: list[tuple[str, str, dict[str, str]]] = []
    if args.storage in ("local", "both"):
        targets.append(("local", str(work / "runs"), dict(os.environ)))
    if args.storage in ("s3", "both"):
        env, uri, _server = s3_env()
        targets.append(("s3", uri, env))
    results = {}
    for label, storage, env in targets:
        for kind in ("launch", "resume") if args.kind == "both" else (args.kind,):
            t0 = time.monotonic()
            results[(label, kind)] = (scenario(label, kind, storage, env, space, work, args.rounds),
                                      time.monotonic() - t0)
    print(f"\n{args.rounds} rounds per scenario (two processes at the barrier, then the lock):")
    for (label, kind), (counts, seconds) in results.items():
        print(f"  {kind:6} on {label:5} ({seconds:.0f}s): " + "; ".join(f"{n}x {what}" for what, n in counts.items()))


if __name__ == "__main__":
    main()
