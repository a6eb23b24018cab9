"""boto3 upload_file / download_file of a 64 MiB file: multipart with 8 MiB
parts on 8 threads up, ranged GETs on 8 threads down; bytes and ETag checked."""

import os

from boto3.s3.transfer import TransferConfig

import compat
from compat import check_eq, step

SIZE = 64 * (1 << 20) + 4321
PART = 8 << 20


def main():
    s3 = compat.s3_client()
    bucket = compat.fresh_bucket(s3)
    src = os.path.join(compat.WORK, "big.bin")
    back = os.path.join(compat.WORK, "big.back")
    compat.write_random_file(src, SIZE)
    cfg = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=8, use_threads=True)

    step("upload_file")
    s3.upload_file(src, bucket, "data/big.bin", Config=cfg, ExtraArgs={"Metadata": {"origin": "boto3"}})
    head = s3.head_object(Bucket=bucket, Key="data/big.bin")
    check_eq(head["ContentLength"], SIZE, "ContentLength")
    check_eq(head["ETag"].strip('"').split("-")[-1], str(-(-SIZE // PART)), f"part count in ETag {head['ETag']}")
    check_eq(head["Metadata"], {"origin": "boto3"}, "metadata")

    step("download_file")
    s3.download_file(bucket, "data/big.bin", back, Config=cfg)
    check_eq(compat.sha256_file(back), compat.sha256_file(src), "sha256 of the downloaded file")

    step("GetObject partNumber=1")
    part = s3.get_object(Bucket=bucket, Key="data/big.bin", PartNumber=1)
    check_eq(part["ContentLength"], PART, "length of part 1")
    check_eq(part.get("PartsCount"), -(-SIZE // PART), "PartsCount")
    with open(src, "rb") as f:
        check_eq(compat.sha256(part["Body"].read()), compat.sha256(f.read(PART)), "bytes of part 1")

    step("abandoned multipart upload")
    up = s3.create_multipart_upload(Bucket=bucket, Key="data/abandoned")
    s3.upload_part(Bucket=bucket, Key="data/abandoned", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 1024)
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    check_eq([u["UploadId"] for u in uploads], [up["UploadId"]], "ListMultipartUploads")
    parts = s3.list_parts(Bucket=bucket, Key="data/abandoned", UploadId=up["UploadId"])["Parts"]
    check_eq([(p["PartNumber"], p["Size"]) for p in parts], [(1, 1024)], "ListParts")
    s3.abort_multipart_upload(Bucket=bucket, Key="data/abandoned", UploadId=up["UploadId"])
    check_eq(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []), [], "uploads after abort")
    check_eq(compat.list_keys(s3, bucket), ["data/big.bin"], "keys in the bucket")
    for path in (src, back):
        os.remove(path)


compat.run(main)
