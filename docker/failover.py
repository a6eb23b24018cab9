"""S3 side of docker/test-failover.sh (boto3 from the compat venv).

    failover.py mkbucket ENDPOINT BUCKET
    failover.py writer ENDPOINT BUCKET LOG STOPFILE [PREFIX]
        PUTs PREFIX000001, PREFIX000002, … (PREFIX: w/) until STOPFILE
        exists (or 600 s), one request at a time, never retried; appends
        "KEY MD5" to LOG, flushed, for every write the server acknowledged
        (200), and only for those.
    failover.py rto ENDPOINT BUCKET KILLFILE BOUND
        started before the kill, so that nothing of its own start is
        counted: waits for KILLFILE (the kill's epoch time in it), then PUTs
        rto/N (64 KiB: stored on the nodes, not inline in the metadata)
        every 0.2 s until one is acknowledged. Prints "rto S", seconds
        from the kill to that acknowledgement; exit 1 when none comes within
        BOUND seconds of it.
    failover.py write-some ENDPOINT BUCKET PREFIX N LOG
        N acknowledged PUTs (each tried up to 3 times), recorded as above.
    failover.py refused ENDPOINT BUCKET N BOUND
        N PUTs (64 KiB) through a gateway cut off from the quorum, one after
        the other: each must be refused with a 503 within BOUND seconds of
        being sent. Prints the slowest refusal; exit 1 on any write
        acknowledged, any other answer, or a refusal slower than BOUND.
    failover.py listing ENDPOINT BUCKET OUT
        Writes every key of BUCKET with its ETag, sorted, to OUT.
    failover.py verify ENDPOINT BUCKET LOG [WITHIN]
        GETs every key in LOG and compares its MD5; retries what is missing or
        different for up to WITHIN seconds (default 0: once). Prints
        "checked N, lost M" and every lost key; exit 1 when M > 0.

The root key comes from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Every
request is time-bounded (2 s to connect, 10 s to read) and sent once.
"""

import hashlib
import os
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

SIZES = [1 << 10, 7 << 10, 64 << 10, 300 << 10]


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(
            connect_timeout=2,
            read_timeout=10,
            # total_max_attempts counts the first attempt; max_attempts would
            # count retries only (one retry with 1).
            retries={"total_max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )


def put(s3, bucket, key, size):
    body = os.urandom(size)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return hashlib.md5(body).hexdigest()


def writer(endpoint, bucket, log_path, stop_file, prefix="w/"):
    s3 = client(endpoint)
    deadline = time.monotonic() + 600
    acked = failed = 0
    i = 0
    with open(log_path, "a", encoding="ascii") as log:
        while not os.path.exists(stop_file) and time.monotonic() < deadline:
            i += 1
            key = f"{prefix}{i:06d}"
            try:
                md5 = put(s3, bucket, key, SIZES[i % len(SIZES)])
            except Exception:  # noqa: BLE001 - any failure: not acknowledged
                failed += 1
                time.sleep(0.05)
                continue
            log.write(f"{key} {md5}\n")
            log.flush()
            acked += 1
    print(f"writer: {acked} acknowledged, {failed} failed", file=sys.stderr)


def rto(endpoint, bucket, kill_file, bound):
    s3 = client(endpoint)
    # Connected and warm before the kill, like a client already using dc-b.
    put(s3, bucket, "rto/warm", 1 << 10)
    while not os.path.exists(kill_file) or os.path.getsize(kill_file) == 0:
        time.sleep(0.01)
    with open(kill_file, encoding="ascii") as f:
        killed = float(f.read().strip())
    n = 0
    while True:
        now = time.time()
        n += 1
        try:
            # Past the inline threshold (4 KiB): the write needs the storage
            # nodes, not only the metadata.
            put(s3, bucket, f"rto/{n}", 64 << 10)
            print(f"rto {time.time() - killed:.1f}", flush=True)
            return 0
        except Exception as e:  # noqa: BLE001 - not yet: try again
            last = f"{type(e).__name__}: {e}"
        if time.time() - killed > bound:
            print(f"no PUT acknowledged within {bound} s of the kill ({n} tries); last: {last}",
                  file=sys.stderr)
            return 1
        time.sleep(max(0.0, 0.2 - (time.time() - now)))


def write_some(endpoint, bucket, prefix, n, log_path):
    s3 = client(endpoint)
    with open(log_path, "a", encoding="ascii") as log:
        for i in range(1, n + 1):
            key = f"{prefix}{i:04d}"
            # Retried for up to 20 s, as an SDK honouring Retry-After would:
            # a 503 now and then while a site is down is known (see the
            # session-16 note), a write that cannot be made at all is not.
            deadline = time.monotonic() + 20
            while True:
                try:
                    md5 = put(s3, bucket, key, SIZES[i % len(SIZES)])
                    break
                except Exception as e:  # noqa: BLE001 - retried, then fatal
                    if time.monotonic() > deadline:
                        print(f"PUT {key} failed for 20 s: {e}", file=sys.stderr)
                        return 1
                    time.sleep(0.5)
            log.write(f"{key} {md5}\n")
            log.flush()
    return 0


def refused(endpoint, bucket, n, bound):
    s3 = client(endpoint)
    slowest = 0.0
    for i in range(1, n + 1):
        started = time.monotonic()
        try:
            put(s3, bucket, f"cut-off/{i:04d}", 64 << 10)
        except ClientError as e:
            took = time.monotonic() - started
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status != 503:
                print(f"PUT {i}: answered {status} ({e}), not 503", file=sys.stderr)
                return 1
            slowest = max(slowest, took)
            if took > bound:
                print(f"PUT {i}: refused after {took:.2f} s, more than {bound} s", file=sys.stderr)
                return 1
            continue
        except Exception as e:  # noqa: BLE001 - no answer at all is a failure too
            print(f"PUT {i}: no answer ({type(e).__name__}: {e})", file=sys.stderr)
            return 1
        print(f"PUT {i}: acknowledged by a gateway without a quorum", file=sys.stderr)
        return 1
    print(f"refused {n}, slowest {slowest:.2f} s")
    return 0


def listing(endpoint, bucket, out_path):
    s3 = client(endpoint)
    lines = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        lines.extend(f"{o['Key']} {o['ETag']}" for o in page.get("Contents", []))
    with open(out_path, "w", encoding="ascii") as f:
        f.write("".join(f"{line}\n" for line in sorted(lines)))
    return 0


def verify(endpoint, bucket, log_path, within):
    s3 = client(endpoint)
    with open(log_path, encoding="ascii") as f:
        want = dict(line.split() for line in f if line.strip())
    deadline = time.monotonic() + within
    todo = dict(want)
    why = {}
    while True:
        for key, md5 in list(todo.items()):
            try:
                got = hashlib.md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
            except Exception as e:  # noqa: BLE001 - counted as lost for now
                why[key] = f"{type(e).__name__}: {e}"
                continue
            if got == md5:
                del todo[key]
                why.pop(key, None)
            else:
                why[key] = f"md5 {got}, acknowledged {md5}"
        if not todo or time.monotonic() >= deadline:
            break
        time.sleep(1)
    print(f"checked {len(want)}, lost {len(todo)}")
    for key in sorted(todo)[:20]:
        print(f"  lost {key}: {why.get(key)}")
    return 1 if todo else 0


def main(argv):
    cmd, args = argv[0], argv[1:]
    if cmd == "mkbucket":
        client(args[0]).create_bucket(Bucket=args[1])
        return 0
    if cmd == "writer":
        writer(*args)
        return 0
    if cmd == "rto":
        return rto(args[0], args[1], args[2], float(args[3]))
    if cmd == "write-some":
        return write_some(args[0], args[1], args[2], int(args[3]), args[4])
    if cmd == "refused":
        return refused(args[0], args[1], int(args[2]), float(args[3]))
    if cmd == "listing":
        return listing(*args)
    if cmd == "verify":
        return verify(args[0], args[1], args[2], float(args[3]) if len(args) > 3 else 0)
    sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
