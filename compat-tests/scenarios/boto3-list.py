"""boto3 listing: ListObjectsV2 over 2,500 keys with pagination, delimiters,
StartAfter and ListObjects V1 markers; then DeleteObjects of 1,000 keys."""

import compat
from compat import check, check_eq, step

N = 2500


def main():
    s3 = compat.s3_client(max_pool_connections=16)
    bucket = compat.fresh_bucket(s3)
    keys = sorted(f"dir{i % 10}/obj-{i:05d}" for i in range(N))

    step("put 2,500 keys")
    compat.parallel(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys)

    step("list_objects_v2 paginated by 1,000")
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 1000}))
    check_eq([len(p.get("Contents", [])) for p in pages], [1000, 1000, 500], "page sizes")
    check_eq([o["Key"] for p in pages for o in p["Contents"]], keys, "keys over all pages")
    check_eq([p["IsTruncated"] for p in pages], [True, True, False], "IsTruncated")
    sizes = {o["Size"] for p in pages for o in p["Contents"]}
    check_eq(sizes, {len(keys[0])}, "object sizes")

    step("list_objects_v2 default page size")
    page = s3.list_objects_v2(Bucket=bucket)
    check_eq((page["KeyCount"], page["IsTruncated"]), (1000, True), "KeyCount and IsTruncated of a default page")

    step("pages of 100 under a prefix")
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="dir3/", PaginationConfig={"PageSize": 100}))
    check_eq(len(pages), 3, "pages of 100 over 250 keys")
    check_eq([o["Key"] for p in pages for o in p["Contents"]], [k for k in keys if k.startswith("dir3/")], "keys under dir3/")

    step("delimiter")
    page = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    check_eq([c["Prefix"] for c in page.get("CommonPrefixes", [])], [f"dir{i}/" for i in range(10)], "CommonPrefixes")
    check_eq(page.get("Contents", []), [], "Contents beside the prefixes")

    step("StartAfter and ListObjects V1 markers")
    page = s3.list_objects_v2(Bucket=bucket, StartAfter=keys[2494])
    check_eq([o["Key"] for p in [page] for o in p["Contents"]], keys[2495:], "keys after StartAfter")
    v1 = [o["Key"] for p in s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 700})
          for o in p["Contents"]]
    check_eq(v1, keys, "ListObjects V1 over all pages")

    step("delete_objects of 1,000 keys")
    doomed = keys[::5] + keys[1::5][:500]
    check_eq(len(doomed), 1000, "keys to delete")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in doomed]})
    check_eq(resp.get("Errors", []), [], "DeleteObjects errors")
    check_eq(sorted(d["Key"] for d in resp.get("Deleted", [])), sorted(doomed), "keys reported deleted")
    left = compat.list_keys(s3, bucket)
    check_eq(left, sorted(set(keys) - set(doomed)), "keys left")

    step("delete_objects quiet, with a missing key")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": left[0]}, {"Key": "never-was"}], "Quiet": True})
    check_eq(resp.get("Errors", []), [], "quiet DeleteObjects errors")
    check_eq(resp.get("Deleted", []), [], "quiet DeleteObjects reports nothing")
    check(left[0] not in compat.list_keys(s3, bucket, left[0][:5]), "quietly deleted key still listed")


compat.run(main)
