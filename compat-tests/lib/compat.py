"""Helpers shared by the Python scenarios and the shell scenarios' checks.

A scenario runs in a clean environment that run.sh builds (see run.sh,
`scenario_env`): COMPAT_ENDPOINT, COMPAT_ACCESS_KEY, COMPAT_SECRET_KEY,
COMPAT_BUCKET (a bucket name of its own), COMPAT_WORK (a scratch dir),
COMPAT_REASON (where to write the one-line failure reason) and COMPAT_STEP
(where the current step is noted, so a timeout can say where it hung).
"""

import base64
import hashlib
import os
import sys
import traceback
import zlib
from concurrent.futures import ThreadPoolExecutor

REGION = "us-east-1"
ENDPOINT = os.environ.get("COMPAT_ENDPOINT", "")
ACCESS_KEY = os.environ.get("COMPAT_ACCESS_KEY", "")
SECRET_KEY = os.environ.get("COMPAT_SECRET_KEY", "")
BUCKET = os.environ.get("COMPAT_BUCKET", "")
WORK = os.environ.get("COMPAT_WORK", ".")

_current_step = "start"


class Failure(Exception):
    """An assertion about the server's behaviour did not hold."""


def step(name):
    """Notes the step the scenario is in; failures and timeouts name it."""
    global _current_step
    _current_step = name
    print(f"--- {name}", flush=True)
    path = os.environ.get("COMPAT_STEP")
    if path:
        with open(path, "w") as f:
            f.write(name)


def check(cond, msg):
    """Fails the scenario with `msg` unless `cond` holds."""
    if not cond:
        raise Failure(msg)


def check_eq(got, want, what):
    """Fails unless got == want, showing both (shortened)."""
    if got != want:
        raise Failure(f"{what}: got {_short(got)}, want {_short(want)}")


def _short(v, limit=160):
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + "…"


def expect_error(fn, code, status=None):
    """Calls fn(), which must raise a botocore ClientError with `code`."""
    from botocore.exceptions import ClientError

    try:
        fn()
    except ClientError as e:
        got = e.response.get("Error", {}).get("Code")
        got_status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        check(
            got == code and (status is None or got_status == status),
            f"expected {code} ({status}), got {got} ({got_status}): {e}",
        )
        return e
    raise Failure(f"expected error {code}, but the call succeeded")


def sha256(data):
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    """Hex SHA-256 of a file's contents."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def crc32_b64(data):
    """The S3 x-amz-checksum-crc32 value of bytes (base64 of big-endian CRC32)."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def md5_b64(data):
    """The Content-MD5 header value of bytes."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def random_bytes(n, seed=None):
    """n pseudo-random bytes (os.urandom unless a seed asks for repeatability)."""
    if seed is None:
        return os.urandom(n)
    import random

    return random.Random(seed).randbytes(n)


def write_random_file(path, size):
    """Writes `size` random bytes to path in 1 MiB pieces."""
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


def client_config(**kw):
    """A botocore Config for our endpoint: path-style, us-east-1, SigV4."""
    from botocore.config import Config

    s3 = {"addressing_style": "path"}
    return Config(region_name=REGION, signature_version="s3v4", s3=s3, **kw)


def s3_client(endpoint=None, secret_key=None, verify=None, **config):
    """A boto3 S3 client for the server under test (never the ambient AWS setup)."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret_key or SECRET_KEY,
        region_name=REGION,
    )
    return session.client(
        "s3",
        endpoint_url=endpoint or ENDPOINT,
        config=client_config(**config),
        verify=verify,
    )


def parallel(fn, items, workers=16):
    """Runs fn over items on a thread pool; re-raises the first error."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def list_keys(s3, bucket, prefix=""):
    """All keys under prefix, via the ListObjectsV2 paginator."""
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def empty_bucket(s3, bucket):
    """Deletes every object version, delete marker and multipart upload."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        items = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if items:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": items, "Quiet": True})
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for u in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])


def remove_bucket(s3, bucket):
    """Empties and deletes a bucket; a bucket already gone is fine."""
    from botocore.exceptions import ClientError

    try:
        empty_bucket(s3, bucket)
        s3.delete_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise


def fresh_bucket(s3, name=None, versioned=False):
    """Creates the scenario's bucket (or `name`) and returns its name."""
    name = name or BUCKET
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _reason(exc):
    from botocore.exceptions import ClientError

    if isinstance(exc, Failure):
        return str(exc)
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{err.get('Code')} ({status}): {err.get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def run(main):
    """Runs a scenario's main(); on failure writes the reason and exits 1."""
    try:
        main()
    except BaseException as exc:  # noqa: BLE001 - every failure must be reported
        traceback.print_exc()
        reason = f"[{_current_step}] {_reason(exc)}".replace("\n", " ")
        path = os.environ.get("COMPAT_REASON")
        if path:
            with open(path, "w") as f:
                f.write(reason)
        print(f"FAIL: {reason}", file=sys.stderr)
        sys.exit(1)
