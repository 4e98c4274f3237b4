"""One side of a paired A/B: a process that builds timed blocks from its own tree and times them on
request (`python -m zoo.paired.worker`, started by zoo.paired.session with its tree first on sys.path).

It speaks JSON lines: requests on stdin, one reply per request on the stdout it was started with (anything
else the code prints goes to stderr). While it waits for a request it blocks on stdin and takes no CPU time;
OMP_WAIT_POLICY=PASSIVE, set by the controller, puts torch's idle threads to sleep at once.

  {"op": "build", "block": NAME, "tier": T}   -> {"built": NAME}
  {"op": "time", "block": NAME, "steps": N}   -> {"seconds": S, "cpu_seconds": C}
  {"op": "quit"}
Its first line, unasked, says who it is: {"hello": {"zoo": zoo.__file__, "commit": ..., "python": ..., "torch": ...}}.
A request that fails is answered {"error": MESSAGE, "kind": "block" | "crash"}.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

PROTOCOL = 1


def identity() -> dict:
    import torch

    import zoo

    tree = Path(zoo.__file__).resolve().parent.parent
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return {"protocol": PROTOCOL, "zoo": str(Path(zoo.__file__).resolve()), "tree": str(tree), "commit": commit or None,
            "dirty": bool(dirty), "python": sys.executable, "python_version": sys.version.split()[0],
            "torch": torch.__version__, "torch_file": str(Path(torch.__file__).resolve()),
            "threads": torch.get_num_threads(), "pid": os.getpid()}


def serve(requests, reply) -> None:
    import torch

    from zoo.paired.blocks import BlockError, build_block
    from zoo.training.data import default_cache_dir, load_dataset
    from zoo.training.engine import TrainOptions

    data_root = Path(os.environ["KDBENCH_DATA"]) if os.environ.get("KDBENCH_DATA") else None
    cache_dir = default_cache_dir()
    opts = TrainOptions(device=torch.device("cpu"), log=lambda line: None)  # ab records are of the cpu
    datasets, blocks = {}, {}

    def dataset(variant: str):
        if variant not in datasets:
            datasets[variant] = load_dataset(variant, data_root, cache_dir)
        return datasets[variant]

    for line in requests:
        request = json.loads(line)
        op = request.get("op")
        if op == "quit":
            return
        try:
            if op == "build":
                blocks[request["block"]] = build_block(request["block"], request["tier"], dataset, opts)
                reply({"built": request["block"]})
            elif op == "time":
                seconds, cpu_seconds = blocks[request["block"]].time(int(request["steps"]))
                reply({"seconds": seconds, "cpu_seconds": cpu_seconds})
            else:
                reply({"error": f"unknown request {op!r}", "kind": "crash"})
        except (BlockError, KeyError) as err:  # kdbench's UnknownPairError is a KeyError too
            reply({"error": f"{type(err).__name__}: {err}", "kind": "block"})
        except Exception as err:  # noqa: BLE001 - the controller shows it with the side's name
            reply({"error": f"{type(err).__name__}: {err}\n{traceback.format_exc()}", "kind": "crash"})


def main() -> None:
    protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the code's own prints go to stderr: stdout carries replies only
    sys.stdout = sys.stderr

    def reply(message: dict) -> None:
        protocol_out.write(json.dumps(message) + "\n")
        protocol_out.flush()

    reply({"hello": identity()})
    serve(sys.stdin, reply)


if __name__ == "__main__":
    main()
