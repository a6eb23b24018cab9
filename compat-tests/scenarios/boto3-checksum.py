"""boto3 with current botocore's default checksums: over HTTPS (through a TLS
relay) PutObject is aws-chunked with an x-amz-checksum-crc32 trailer, over
HTTP the CRC32 travels in a header; multipart uploads carry per-part CRC32s.
The server must accept all of them, store the right bytes and give the CRC32
back on GetObject with ChecksumMode=ENABLED."""

import io

from boto3.s3.transfer import TransferConfig

import compat
from compat import check, check_eq, step
from tls_proxy import tls_relay

SIZES = [0, 1024, (1 << 20) + 7, 5 * (1 << 20) + 123]


def capture_headers(s3, operation):
    """Records the headers of every request botocore sends for `operation`."""
    seen = []
    s3.meta.events.register(
        f"before-send.s3.{operation}", lambda request, **_: seen.append(dict(request.headers))
    )
    return seen


def header(headers, name):
    """A header's value as str, whatever its case and type."""
    for k, v in headers.items():
        if k.lower() == name:
            return v.decode() if isinstance(v, bytes) else v
    return None


def put_and_verify(s3, bucket, label, expect_trailer):
    sent = capture_headers(s3, "PutObject")
    for size in SIZES:
        data = compat.random_bytes(size)
        key = f"{label}/obj-{size}"
        sent.clear()
        resp = s3.put_object(Bucket=bucket, Key=key, Body=io.BytesIO(data))
        h = sent[-1]
        if expect_trailer:
            check_eq(header(h, "x-amz-trailer"), "x-amz-checksum-crc32", f"{key}: x-amz-trailer sent")
            check("aws-chunked" in (header(h, "content-encoding") or ""), f"{key}: not aws-chunked: {h}")
        else:
            check_eq(header(h, "x-amz-checksum-crc32"), compat.crc32_b64(data), f"{key}: checksum header sent")
        check_eq(resp.get("ChecksumCRC32"), compat.crc32_b64(data), f"{key}: ChecksumCRC32 in the PutObject answer")
        got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        body = got["Body"].read()
        check_eq(len(body), size, f"{key}: length read back")
        check_eq(compat.sha256(body), compat.sha256(data), f"{key}: sha256 read back")
        check_eq(got.get("ChecksumCRC32"), compat.crc32_b64(data), f"{key}: ChecksumCRC32 on GetObject")
        check_eq(got["ContentLength"], size, f"{key}: ContentLength")


def main():
    s3 = compat.s3_client()
    bucket = compat.fresh_bucket(s3)

    step("HTTP: CRC32 in a header")
    put_and_verify(s3, bucket, "http", expect_trailer=False)

    with tls_relay(compat.ENDPOINT, compat.WORK) as (https_endpoint, ca):
        tls = compat.s3_client(endpoint=https_endpoint, verify=ca)

        step("HTTPS: aws-chunked with a CRC32 trailer")
        put_and_verify(tls, bucket, "https", expect_trailer=True)

        step("HTTPS: multipart upload with per-part CRC32")
        data = compat.random_bytes(12 * (1 << 20) + 5)
        parts = capture_headers(tls, "UploadPart")
        cfg = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=3)
        tls.upload_fileobj(io.BytesIO(data), bucket, "https/multipart", Config=cfg)
        check_eq(len(parts), 3, "UploadPart requests")
        check(all(header(h, "x-amz-trailer") == "x-amz-checksum-crc32" for h in parts),
              "UploadPart did not use CRC32 trailers")
        body = tls.get_object(Bucket=bucket, Key="https/multipart")["Body"].read()
        check_eq(compat.sha256(body), compat.sha256(data), "sha256 of the multipart object")
        head = s3.head_object(Bucket=bucket, Key="https/multipart")
        check(head["ETag"].strip('"').endswith("-3"), f"multipart ETag {head['ETag']}")

    step("listing")
    keys = compat.list_keys(s3, bucket)
    want = sorted([f"{p}/obj-{n}" for p in ("http", "https") for n in SIZES] + ["https/multipart"])
    check_eq(keys, want, "keys in the bucket")


compat.run(main)
