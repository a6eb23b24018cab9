"""boto3 conditional writes and reads: If-None-Match: * twice (the second gets
412 and the first write survives), If-Match with a wrong and a right ETag,
conditional GETs (304, 412)."""

import compat
from compat import check_eq, expect_error, step


def main():
    s3 = compat.s3_client()
    bucket = compat.fresh_bucket(s3)

    step("If-None-Match: * on a new key")
    first = s3.put_object(Bucket=bucket, Key="lock", Body=b"first writer", IfNoneMatch="*")

    step("If-None-Match: * again")
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="lock", Body=b"second writer", IfNoneMatch="*"),
                 "PreconditionFailed", 412)
    check_eq(s3.get_object(Bucket=bucket, Key="lock")["Body"].read(), b"first writer", "content after the refused put")

    step("If-Match")
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="lock", Body=b"x", IfMatch='"0123456789abcdef0123456789abcdef"'),
                 "PreconditionFailed", 412)
    s3.put_object(Bucket=bucket, Key="lock", Body=b"third writer", IfMatch=first["ETag"])
    check_eq(s3.get_object(Bucket=bucket, Key="lock")["Body"].read(), b"third writer", "content after If-Match put")

    step("conditional GET")
    etag = s3.head_object(Bucket=bucket, Key="lock")["ETag"]
    expect_error(lambda: s3.get_object(Bucket=bucket, Key="lock", IfNoneMatch=etag), "304", 304)
    expect_error(lambda: s3.get_object(Bucket=bucket, Key="lock", IfMatch='"nope"'), "PreconditionFailed", 412)
    check_eq(s3.get_object(Bucket=bucket, Key="lock", IfMatch=etag)["Body"].read(), b"third writer", "GET If-Match")


compat.run(main)
