"""minio Python SDK: make_bucket, put/get/stat/list/remove, fput/fget of a
12 MiB file in 5 MiB parts, remove_objects, remove_bucket."""

import io
import os
from urllib.parse import urlparse

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

import compat
from compat import check, check_eq, step


def main():
    host = urlparse(compat.ENDPOINT).netloc
    mc = Minio(host, access_key=compat.ACCESS_KEY, secret_key=compat.SECRET_KEY, secure=False, region="us-east-1")
    bucket = compat.BUCKET

    step("make_bucket")
    mc.make_bucket(bucket)
    check(mc.bucket_exists(bucket), "bucket_exists after make_bucket")

    step("put_object and get_object")
    data = compat.random_bytes(70_000)
    mc.put_object(bucket, "docs/a.bin", io.BytesIO(data), len(data),
                  content_type="application/x-test", metadata={"x-amz-meta-owner": "compat"})
    resp = mc.get_object(bucket, "docs/a.bin")
    try:
        check_eq(compat.sha256(resp.read()), compat.sha256(data), "sha256 read back")
    finally:
        resp.close()
        resp.release_conn()
    for i in range(3):
        mc.put_object(bucket, f"docs/n{i}.txt", io.BytesIO(b"n"), 1)

    step("stat_object")
    st = mc.stat_object(bucket, "docs/a.bin")
    check_eq(st.size, len(data), "size")
    check_eq(st.content_type, "application/x-test", "content type")
    check_eq(st.metadata.get("x-amz-meta-owner"), "compat", "user metadata")
    check_eq(st.etag, __import__("hashlib").md5(data).hexdigest(), "etag")

    step("fput_object and fget_object (multipart)")
    src = os.path.join(compat.WORK, "big.bin")
    back = os.path.join(compat.WORK, "big.back")
    compat.write_random_file(src, 12 * (1 << 20) + 17)
    mc.fput_object(bucket, "big.bin", src, part_size=5 * (1 << 20))
    check(mc.stat_object(bucket, "big.bin").etag.endswith("-3"), "ETag of the 3-part upload")
    mc.fget_object(bucket, "big.bin", back)
    check_eq(compat.sha256_file(back), compat.sha256_file(src), "sha256 of fget_object")

    step("list_objects")
    top = sorted((o.object_name, o.is_dir) for o in mc.list_objects(bucket))
    check_eq(top, [("big.bin", False), ("docs/", True)], "top-level listing")
    deep = [o.object_name for o in mc.list_objects(bucket, prefix="docs/", recursive=True)]
    check_eq(deep, ["docs/a.bin", "docs/n0.txt", "docs/n1.txt", "docs/n2.txt"], "recursive listing under docs/")

    step("remove_object and remove_objects")
    mc.remove_object(bucket, "big.bin")
    try:
        mc.stat_object(bucket, "big.bin")
        raise compat.Failure("stat_object found a removed object")
    except S3Error as e:
        check_eq(e.code, "NoSuchKey", "error for a removed object")
    errors = list(mc.remove_objects(bucket, [DeleteObject(k) for k in deep]))
    check_eq(errors, [], "remove_objects errors")
    check_eq(list(mc.list_objects(bucket, recursive=True)), [], "objects left")

    step("remove_bucket")
    mc.remove_bucket(bucket)
    check(not mc.bucket_exists(bucket), "bucket exists after remove_bucket")


compat.run(main)
