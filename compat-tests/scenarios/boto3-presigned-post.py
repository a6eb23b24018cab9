"""Browser uploads: forms from boto3's generate_presigned_post posted with
requests as multipart/form-data, as a web page would: 201 with the
PostResponse document and ${filename} in the key, a 303 redirect, 204 by
default; a file outside content-length-range, an expired policy, a field
changed after signing and an unsigned form refused as S3 refuses them,
nothing stored."""

import re
import time

import requests

import compat
from compat import check, check_eq, step


def code(r):
    m = re.search(r"<Code>([^<]*)</Code>", r.text)
    return m.group(1) if m else None


def main():
    s3 = compat.s3_client()
    bucket = compat.fresh_bucket(s3)
    http = requests.Session()
    http.trust_env = False
    photo = compat.random_bytes(300_000)

    def presign(key, fields=None, conditions=None, expires=300):
        return s3.generate_presigned_post(
            Bucket=bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires
        )

    def submit(post, data, name="photo.png", redirects=True):
        return http.post(post["url"], data=post["fields"], files={"file": (name, data)},
                         allow_redirects=redirects)

    step("signed form, 201, ${filename}")
    fields = {"Content-Type": "image/png", "success_action_status": "201", "x-amz-meta-owner": "ann"}
    conditions = [{"Content-Type": "image/png"}, {"success_action_status": "201"},
                  {"x-amz-meta-owner": "ann"}, ["content-length-range", 1, 1_000_000]]
    r = submit(presign("in/${filename}", fields, conditions), photo)
    check_eq(r.status_code, 201, f"status ({r.text[:300]})")
    check("<Key>in/photo.png</Key>" in r.text, f"PostResponse names the key: {r.text[:300]}")
    etag = s3.head_object(Bucket=bucket, Key="in/photo.png")["ETag"]
    check(f"<ETag>{etag}</ETag>" in r.text.replace("&quot;", '"'), f"PostResponse ETag: {r.text[:300]}")
    got = s3.get_object(Bucket=bucket, Key="in/photo.png")
    check_eq(compat.sha256(got["Body"].read()), compat.sha256(photo), "sha256 stored by the form")
    check_eq(got["ContentType"], "image/png", "stored Content-Type")
    check_eq(got["Metadata"], {"owner": "ann"}, "stored metadata")

    step("redirect and default status")
    target = "https://app.example/uploaded"
    post = presign("in/redirected", {"success_action_redirect": target},
                   [{"success_action_redirect": target}])
    r = submit(post, b"hello", redirects=False)
    check_eq(r.status_code, 303, f"status ({r.text[:300]})")
    check(r.headers.get("Location", "").startswith(target + f"?bucket={bucket}&key=in%2Fredirected&etag="),
          f"Location: {r.headers.get('Location')}")
    r = submit(presign("in/plain"), b"plain")
    check_eq(r.status_code, 204, f"default status ({r.text[:300]})")
    check_eq(s3.get_object(Bucket=bucket, Key="in/plain")["Body"].read(), b"plain", "bytes of the 204 upload")

    step("refusals")
    before = compat.list_keys(s3, bucket)
    r = submit(presign("big", conditions=[["content-length-range", 1, 1000]]), photo)
    check_eq((r.status_code, code(r)), (400, "EntityTooLarge"), f"file over the range ({r.text[:300]})")
    r = submit(presign("small", conditions=[["content-length-range", 10, 1000]]), b"tiny")
    check_eq((r.status_code, code(r)), (400, "EntityTooSmall"), f"file under the range ({r.text[:300]})")
    post = presign("late", expires=1)
    time.sleep(2.5)
    r = submit(post, b"late")
    check_eq((r.status_code, code(r)), (403, "AccessDenied"), f"expired policy ({r.text[:300]})")
    check("Policy expired" in r.text, f"expired policy message: {r.text[:300]}")
    post = presign("mine")
    post["fields"]["key"] = "theirs"
    r = submit(post, b"x")
    check_eq((r.status_code, code(r)), (403, "AccessDenied"), f"key changed after signing ({r.text[:300]})")
    check("Policy Condition failed" in r.text, f"changed key message: {r.text[:300]}")
    r = http.post(f"{compat.ENDPOINT}/{bucket}", data={"key": "anon"}, files={"file": ("a", b"x")})
    check_eq((r.status_code, code(r)), (403, "AccessDenied"), f"unsigned form ({r.text[:300]})")
    check_eq(compat.list_keys(s3, bucket), before, "keys after the refused forms")


compat.run(main)
