"""Expired presigned URLs: GET and PUT get 403 AccessDenied, nothing is stored;
the same URLs work while they are valid."""

import time

import requests

import compat
from compat import check, check_eq, step


def main():
    s3 = compat.s3_client()
    bucket = compat.fresh_bucket(s3)
    s3.put_object(Bucket=bucket, Key="obj", Body=b"payload")
    http = requests.Session()
    http.trust_env = False

    def url(op, key, expires):
        return s3.generate_presigned_url(op, Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)

    step("valid URLs work")
    check_eq(http.get(url("get_object", "obj", 60)).content, b"payload", "GET with a valid URL")

    step("expired URLs are refused")
    get_url, put_url = url("get_object", "obj", 1), url("put_object", "late", 1)
    time.sleep(2.5)
    r = http.get(get_url)
    check_eq(r.status_code, 403, "status of an expired GET")
    check("<Code>AccessDenied</Code>" in r.text, f"expired GET: expected AccessDenied, got {r.text[:300]}")
    r = http.put(put_url, data=b"too late")
    check_eq(r.status_code, 403, "status of an expired PUT")
    check_eq(compat.list_keys(s3, bucket), ["obj"], "keys after the expired PUT")


compat.run(main)
