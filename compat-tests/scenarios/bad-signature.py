"""Requests the server must refuse: a wrong secret (403 SignatureDoesNotMatch,
nothing stored), an unknown access key (403 InvalidAccessKeyId), an anonymous
request (403 AccessDenied)."""

import requests

import compat
from compat import check, check_eq, expect_error, step


def main():
    s3 = compat.s3_client()
    bucket = compat.fresh_bucket(s3)
    s3.put_object(Bucket=bucket, Key="private.txt", Body=b"secret")

    step("wrong secret")
    bad = compat.s3_client(secret_key="not-the-secret-" + compat.SECRET_KEY[:8])
    expect_error(bad.list_buckets, "SignatureDoesNotMatch", 403)
    expect_error(lambda: bad.get_object(Bucket=bucket, Key="private.txt"), "SignatureDoesNotMatch", 403)
    expect_error(lambda: bad.put_object(Bucket=bucket, Key="forged.txt", Body=b"x"), "SignatureDoesNotMatch", 403)
    expect_error(lambda: bad.delete_object(Bucket=bucket, Key="private.txt"), "SignatureDoesNotMatch", 403)
    check_eq(compat.list_keys(s3, bucket), ["private.txt"], "keys after the refused requests")

    step("unknown access key")
    import boto3

    stranger = boto3.session.Session(aws_access_key_id="TCUNKNOWNKEY000000000", aws_secret_access_key="x" * 40)
    stranger = stranger.client("s3", endpoint_url=compat.ENDPOINT, config=compat.client_config())
    expect_error(lambda: stranger.get_object(Bucket=bucket, Key="private.txt"), "InvalidAccessKeyId", 403)

    step("anonymous request")
    http = requests.Session()
    http.trust_env = False
    r = http.get(f"{compat.ENDPOINT}/{bucket}/private.txt")
    check_eq(r.status_code, 403, "status of an anonymous GET")
    check("<Code>AccessDenied</Code>" in r.text, f"anonymous GET: expected AccessDenied, got {r.text[:300]}")
    r = http.put(f"{compat.ENDPOINT}/{bucket}/anon.txt", data=b"x")
    check_eq(r.status_code, 403, "status of an anonymous PUT")
    check_eq(compat.list_keys(s3, bucket), ["private.txt"], "keys after the anonymous PUT")


compat.run(main)
