"""boto3 and bucket lifecycle: put, get and delete a configuration of
several rules, S3's refusals (Days 0, Days with Date, duplicate ids, a
Date not at midnight, transitions), and the x-amz-expiration header of an
object a rule will expire."""

import datetime

import compat
from compat import check, check_eq, expect_error, step


def rule(rule_id, prefix, **actions):
    return {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": prefix}, **actions}


def main():
    s3 = compat.s3_client()
    bucket = compat.fresh_bucket(s3, versioned=True)

    step("no configuration yet")
    expect_error(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket),
                 "NoSuchLifecycleConfiguration", 404)

    step("put and get")
    rules = [
        rule("logs", "logs/", Expiration={"Days": 30}),
        rule("history", "", NoncurrentVersionExpiration={"NoncurrentDays": 7, "NewerNoncurrentVersions": 2}),
        rule("uploads", "tmp/", AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1}),
        {"ID": "markers", "Status": "Disabled",
         "Filter": {"And": {"Prefix": "old/", "Tags": [{"Key": "k", "Value": "v"}],
                            "ObjectSizeGreaterThan": 10}},
         "Expiration": {"Days": 3}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    check_eq([r["ID"] for r in got], ["logs", "history", "uploads", "markers"], "rule ids")
    check_eq(got[0]["Expiration"], {"Days": 30}, "expiration of the first rule")
    check_eq(got[1]["NoncurrentVersionExpiration"], {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2},
             "noncurrent expiration")
    check_eq(got[3]["Status"], "Disabled", "status of a disabled rule")
    check_eq(got[3]["Filter"]["And"]["Tags"], [{"Key": "k", "Value": "v"}], "tags under And")

    step("x-amz-expiration")
    put = s3.put_object(Bucket=bucket, Key="logs/today.log", Body=b"line\n")
    header = put["ResponseMetadata"]["HTTPHeaders"].get("x-amz-expiration", "")
    check(header.startswith('expiry-date="') and header.endswith('GMT", rule-id="logs"'),
          f"x-amz-expiration on PUT: {header!r}")
    head = s3.head_object(Bucket=bucket, Key="logs/today.log")
    check_eq(head.get("Expiration"), header, "Expiration on HEAD")
    other = s3.put_object(Bucket=bucket, Key="data/x", Body=b"x")
    check_eq(other["ResponseMetadata"]["HTTPHeaders"].get("x-amz-expiration"), None,
             "no expiration outside the rules")

    step("refusals")
    def put(rules):
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})

    expect_error(lambda: put([rule("r", "", Expiration={"Days": 0})]), "InvalidArgument", 400)
    midnight = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    expect_error(lambda: put([rule("r", "", Expiration={"Days": 1, "Date": midnight})]), "MalformedXML", 400)
    noon = midnight + datetime.timedelta(hours=12)
    expect_error(lambda: put([rule("r", "", Expiration={"Date": noon})]), "InvalidArgument", 400)
    expect_error(lambda: put([rule("r", "a/", Expiration={"Days": 1}), rule("r", "b/", Expiration={"Days": 2})]),
                 "InvalidArgument", 400)
    expect_error(lambda: put([rule("r", "", Transitions=[{"Days": 30, "StorageClass": "GLACIER"}])]),
                 "NotImplemented", 501)
    check_eq(len(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]), 4,
             "the configuration is unchanged after refusals")

    step("delete")
    s3.delete_bucket_lifecycle(Bucket=bucket)
    expect_error(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket),
                 "NoSuchLifecycleConfiguration", 404)


compat.run(main)
