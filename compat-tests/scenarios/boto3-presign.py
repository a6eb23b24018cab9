"""boto3 presigned URLs used with requests: PUT, GET, a GET with a response
override, and a HEAD URL."""

import requests

import compat
from compat import check_eq, step


def main():
    s3 = compat.s3_client()
    bucket = compat.fresh_bucket(s3)
    data = compat.random_bytes(200_000)
    http = requests.Session()
    http.trust_env = False

    step("presigned PUT")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up/file.bin"}, ExpiresIn=300)
    r = http.put(url, data=data)
    check_eq(r.status_code, 200, f"status of the presigned PUT ({r.text[:200]})")
    got = s3.get_object(Bucket=bucket, Key="up/file.bin")["Body"].read()
    check_eq(compat.sha256(got), compat.sha256(data), "sha256 stored by the presigned PUT")

    step("presigned PUT with a content type")
    url = s3.generate_presigned_url("put_object", ExpiresIn=300,
                                    Params={"Bucket": bucket, "Key": "up/page.html", "ContentType": "text/html"})
    r = http.put(url, data=b"<p>hi</p>", headers={"Content-Type": "text/html"})
    check_eq(r.status_code, 200, f"status ({r.text[:200]})")
    check_eq(s3.head_object(Bucket=bucket, Key="up/page.html")["ContentType"], "text/html", "stored ContentType")

    step("presigned GET")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "up/file.bin"}, ExpiresIn=300)
    r = http.get(url)
    check_eq(r.status_code, 200, "status of the presigned GET")
    check_eq(compat.sha256(r.content), compat.sha256(data), "sha256 of the presigned GET")

    step("presigned GET with response overrides")
    url = s3.generate_presigned_url("get_object", ExpiresIn=300, Params={
        "Bucket": bucket, "Key": "up/file.bin",
        "ResponseContentDisposition": 'attachment; filename="x.bin"', "ResponseContentType": "application/x-test"})
    r = http.get(url)
    check_eq(r.status_code, 200, "status")
    check_eq(r.headers.get("Content-Disposition"), 'attachment; filename="x.bin"', "Content-Disposition override")
    check_eq(r.headers.get("Content-Type"), "application/x-test", "Content-Type override")

    step("presigned HEAD")
    url = s3.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": "up/file.bin"}, ExpiresIn=300)
    r = http.head(url)
    check_eq((r.status_code, r.headers.get("Content-Length")), (200, str(len(data))), "HEAD status and length")


compat.run(main)
