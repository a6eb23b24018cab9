"""Bodies that do not match their digests: a wrong Content-MD5 gives 400
BadDigest and stores nothing (new key) or keeps the old bytes (existing key);
a malformed one gives InvalidDigest; a wrong x-amz-checksum-crc32 gives
BadDigest; UploadPart with a wrong Content-MD5 gives BadDigest."""

import compat
from compat import check_eq, expect_error, step


def main():
    s3 = compat.s3_client()
    bucket = compat.fresh_bucket(s3)
    data = compat.random_bytes(64_000)
    wrong = compat.md5_b64(b"something else")

    step("wrong Content-MD5 on a new key")
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="new", Body=data, ContentMD5=wrong), "BadDigest", 400)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="new"), "404", 404)

    step("wrong Content-MD5 over an existing key")
    s3.put_object(Bucket=bucket, Key="old", Body=b"original", ContentMD5=compat.md5_b64(b"original"))
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="old", Body=data, ContentMD5=wrong), "BadDigest", 400)
    check_eq(s3.get_object(Bucket=bucket, Key="old")["Body"].read(), b"original", "bytes of the existing object")

    step("malformed Content-MD5")
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="new", Body=data, ContentMD5="not-an-md5"), "InvalidDigest", 400)

    step("wrong x-amz-checksum-crc32")
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="new", Body=data, ChecksumCRC32=compat.crc32_b64(b"other")),
                 "BadDigest", 400)

    step("UploadPart with a wrong Content-MD5")
    up = s3.create_multipart_upload(Bucket=bucket, Key="parts")
    expect_error(lambda: s3.upload_part(Bucket=bucket, Key="parts", UploadId=up["UploadId"], PartNumber=1,
                                        Body=data, ContentMD5=wrong), "BadDigest", 400)
    parts = s3.list_parts(Bucket=bucket, Key="parts", UploadId=up["UploadId"]).get("Parts", [])
    check_eq(parts, [], "parts stored after the refused UploadPart")
    s3.abort_multipart_upload(Bucket=bucket, Key="parts", UploadId=up["UploadId"])

    step("nothing stored")
    check_eq(compat.list_keys(s3, bucket), ["old"], "keys in the bucket")


compat.run(main)
