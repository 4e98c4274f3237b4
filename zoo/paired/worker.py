"""One side of a paired A/B: a process that builds timed blocks from its side's own tree and times them on
request. It speaks JSON lines: requests in, one reply per request out (anything else the code prints goes to
stderr). While it waits for a request it blocks and takes no CPU time; OMP_WAIT_POLICY=PASSIVE, set by the
controller, puts torch's idle threads to sleep at once.

  {"op": "build", "block": NAME, "tier": T}   -> {"built": NAME}
  {"op": "time", "block": NAME, "steps": N}   -> {"seconds": S, "cpu_seconds": C}
  {"op": "quit"}
Its first line, unasked, says who it is: {"hello": {"zoo": zoo.__file__, "commit": ..., "python": ..., "torch": ...}}.
A request that fails is answered {"error": MESSAGE, "kind": "block" | "crash"}.

Every pair gets a fresh worker per side (zoo.paired.session). Two ways to start one:
  started      `python -m zoo.paired.worker` with the side's tree first on sys.path, on stdin and stdout
               (about 2.5 s on this VM, mostly importing torch): the way when the sides' interpreters differ
  forked       `python -m zoo.paired.worker --zygote` imports torch and the third-party modules kdbench's blocks
               use, then forgets kdbench's own modules and runs no tensor operation (a forked child of a process
               that started OpenMP threads can hang). Per {"op": "fork", "tree": DIR, "requests": FIFO,
               "replies": FIFO} it forks a child that puts DIR first on sys.path, imports that tree's own
               `zoo.paired.worker` and serves over the two named pipes; {"op": "reap", "pid": PID} waits for
               a child that was told to quit -> {"ended": PID}. Both sides' children fork from the one zygote,
               and each first moves its memory by random amounts (_place_at_random), so that each draws the
               speed of a layout of its own, as a newly started process does.
"""
from __future__ import annotations

import json
import os
import random
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
    from zoo.records.results import default_cache_dir
    from zoo.training.data import load_dataset
    from zoo.training.forward import TrainOptions

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


def replier(stream):
    def reply(message: dict) -> None:
        stream.write(json.dumps(message) + "\n")
        stream.flush()
    return reply


def zygote(requests, reply) -> None:
    """Fork a worker per request (see the module's docstring) until told to quit."""
    import torch._inductor.config  # noqa: F401 - torch.use_deterministic_algorithms imports it lazily (1.4 s)

    import zoo.paired.blocks  # noqa: F401 - loads the third-party modules the blocks use
    for name in [name for name in sys.modules if name == "zoo" or name.startswith("zoo.")]:
        del sys.modules[name]  # each child imports its own side's kdbench
    own_tree = str(Path(__file__).resolve().parents[2])
    reply({"ready": os.getpid()})
    for line in requests:
        request = json.loads(line)
        if request["op"] == "reap":
            os.waitpid(request["pid"], 0)
            reply({"ended": request["pid"]})
        elif request["op"] == "fork":
            pid = os.fork()
            if pid == 0:
                try:
                    _child(request, own_tree)
                finally:
                    os._exit(0)
            reply({"forked": pid})
        else:
            return


PLACEMENT_BALLAST: list[bytearray] = []


def _child(request: dict, own_tree: str) -> None:
    """A forked worker: its memory placed at random, the side's tree first on sys.path, its own zoo.paired.worker
    serving over named pipes."""
    _place_at_random()
    sys.path[:] = [request["tree"], *(entry for entry in sys.path if entry not in (own_tree, request["tree"]))]
    os.chdir(request["tree"])
    with open(request["requests"]) as requests, open(request["replies"], "w") as replies:
        from zoo.paired import worker  # the side's own

        reply = replier(replies)
        reply({"hello": worker.identity()})
        worker.serve(requests, reply)


def _place_at_random() -> None:
    """Move where this child's memory will lie by random amounts, kept for its life. A forked child allocates
    exactly as its siblings do, so without this every child of one side would share one layout and one speed
    (measured: the CNN KD block 10% apart between the two sides' children of one parent, in every pair); with
    it each child draws its own, as a newly started process does with address-space randomisation."""
    placement = random.Random(os.urandom(8))
    PLACEMENT_BALLAST.extend([
        bytearray(placement.randrange(1 << 12, 1 << 22)),  # mapped on its own: moves later mappings
        bytearray(placement.randrange(16, 1 << 16)),  # from the heap: moves later heap blocks
        *(bytearray(placement.randrange(8, 512)) for _ in range(placement.randrange(1, 2000))),  # small objects
    ])


def main() -> None:
    protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the code's own prints go to stderr: stdout carries replies only
    sys.stdout = sys.stderr
    reply = replier(protocol_out)
    if sys.argv[1:] == ["--zygote"]:
        zygote(sys.stdin, reply)
        return
    reply({"hello": identity()})
    serve(sys.stdin, reply)


if __name__ == "__main__":
    main()
