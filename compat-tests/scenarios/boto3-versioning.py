"""boto3 on a versioned bucket: overwrite, list versions, get the old version,
delete marker, delete a specific version, suspend versioning."""

import compat
from compat import check, check_eq, expect_error, step


def main():
    s3 = compat.s3_client()
    bucket = compat.fresh_bucket(s3, versioned=True)
    check_eq(s3.get_bucket_versioning(Bucket=bucket).get("Status"), "Enabled", "versioning status")

    step("overwrite")
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two!")["VersionId"]
    check(v1 and v2 and v1 != v2, f"version ids {v1!r} {v2!r}")
    check_eq(s3.get_object(Bucket=bucket, Key="k")["Body"].read(), b"two!", "current bytes")

    step("list versions")
    vs = s3.list_object_versions(Bucket=bucket)
    check_eq([(v["VersionId"], v["IsLatest"], v["Size"]) for v in vs["Versions"]],
             [(v2, True, 4), (v1, False, 3)], "versions")

    step("get old version")
    old = s3.get_object(Bucket=bucket, Key="k", VersionId=v1)
    check_eq((old["Body"].read(), old["VersionId"]), (b"one", v1), "old version")
    check_eq(s3.head_object(Bucket=bucket, Key="k", VersionId=v1)["ContentLength"], 3, "HEAD of the old version")

    step("delete marker")
    d = s3.delete_object(Bucket=bucket, Key="k")
    check(d.get("DeleteMarker") is True and d.get("VersionId"), f"DeleteObject answer {d}")
    expect_error(lambda: s3.get_object(Bucket=bucket, Key="k"), "NoSuchKey", 404)
    vs = s3.list_object_versions(Bucket=bucket)
    check_eq([(m["VersionId"], m["IsLatest"]) for m in vs.get("DeleteMarkers", [])], [(d["VersionId"], True)], "delete markers")
    check_eq(len(vs["Versions"]), 2, "versions kept under the marker")
    check_eq(compat.list_keys(s3, bucket), [], "ListObjectsV2 hides the deleted key")
    check_eq(s3.get_object(Bucket=bucket, Key="k", VersionId=v2)["Body"].read(), b"two!", "v2 under the marker")

    step("delete a specific version")
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    expect_error(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId=v1), "NoSuchVersion", 404)
    s3.delete_object(Bucket=bucket, Key="k", VersionId=d["VersionId"])
    check_eq(s3.get_object(Bucket=bucket, Key="k")["Body"].read(), b"two!", "current bytes after removing the marker")

    step("suspended versioning")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    check_eq(s3.get_bucket_versioning(Bucket=bucket).get("Status"), "Suspended", "versioning status")
    s3.put_object(Bucket=bucket, Key="k", Body=b"three")
    s3.put_object(Bucket=bucket, Key="k", Body=b"four")
    vs = s3.list_object_versions(Bucket=bucket)["Versions"]
    check_eq(sorted((v["VersionId"], v["Size"]) for v in vs), sorted([(v2, 4), ("null", 4)]), "versions: v2 and one null version")


compat.run(main)
