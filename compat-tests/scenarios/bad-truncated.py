"""Uploads whose connection drops mid-body: no object appears, and an existing
object keeps its previous bytes. Both a presigned PUT (UNSIGNED-PAYLOAD) and
a header-signed PUT (payload SHA-256 signed) are cut after 1 of 4 MiB, once
with a FIN and once with a RST; the same requests sent whole are the control."""

import socket
import struct
import time
from urllib.parse import urlparse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import compat
from compat import check_eq, expect_error, step

FULL = 4 << 20
SENT = 1 << 20


def presigned_head(s3, bucket, key):
    url = urlparse(s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300))
    return f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {FULL}\r\n\r\n"


def signed_head(bucket, key, body):
    url = f"{compat.ENDPOINT}/{bucket}/{key}"
    req = AWSRequest(method="PUT", url=url, data=body,
                     headers={"x-amz-content-sha256": compat.sha256(body), "Content-Length": str(len(body))})
    SigV4Auth(Credentials(compat.ACCESS_KEY, compat.SECRET_KEY), "s3", compat.REGION).add_auth(req)
    lines = [f"PUT {urlparse(url).path} HTTP/1.1", f"Host: {urlparse(url).netloc}"]
    lines += [f"{k}: {v}" for k, v in req.headers.items() if k.lower() != "host"]
    return "\r\n".join(lines) + "\r\n\r\n"


def send_truncated(head, body, reset):
    """Sends the head and the first SENT bytes of body, then drops the connection."""
    u = urlparse(compat.ENDPOINT)
    sock = socket.create_connection((u.hostname, u.port))
    sock.sendall(head.encode() + body[:SENT])
    time.sleep(0.3)
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def send_whole(head, body):
    """Sends the whole request; returns the response's status line."""
    u = urlparse(compat.ENDPOINT)
    with socket.create_connection((u.hostname, u.port)) as sock:
        sock.sendall(head.encode() + body)
        return sock.makefile("rb").readline().decode().strip()


def main():
    s3 = compat.s3_client()
    bucket = compat.fresh_bucket(s3)
    old = compat.random_bytes(300_000)
    s3.put_object(Bucket=bucket, Key="existing", Body=old)
    body = compat.random_bytes(FULL)

    cases = [("presigned PUT", lambda k: presigned_head(s3, bucket, k)),
             ("signed PUT", lambda k: signed_head(bucket, k, body))]
    for label, head in cases:
        step(f"{label} sent whole (control)")
        status = send_whole(head("control"), body)
        check_eq(status.split(" ")[1:2], ["200"], f"{label}: status line of the whole request ({status})")
        got = s3.get_object(Bucket=bucket, Key="control")["Body"].read()
        check_eq(compat.sha256(got), compat.sha256(body), f"{label}: bytes stored by the whole request")
        for reset in (False, True):
            how = "RST" if reset else "FIN"
            step(f"{label} cut with {how}")
            send_truncated(head("existing"), body, reset)
            send_truncated(head("fresh"), body, reset)
            time.sleep(1)
            got = s3.get_object(Bucket=bucket, Key="existing")["Body"].read()
            check_eq(compat.sha256(got), compat.sha256(old), f"{label}/{how}: bytes of the existing object")
            expect_error(lambda: s3.head_object(Bucket=bucket, Key="fresh"), "404", 404)

    step("listing and a later upload")
    check_eq(compat.list_keys(s3, bucket), ["control", "existing"], "keys after the truncated uploads")
    s3.put_object(Bucket=bucket, Key="fresh", Body=body)
    check_eq(compat.sha256(s3.get_object(Bucket=bucket, Key="fresh")["Body"].read()), compat.sha256(body),
             "a complete upload after the truncated ones")


compat.run(main)
