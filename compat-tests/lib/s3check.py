"""Independent look at the server's state for the shell scenarios (boto3).

    s3check.py keys BUCKET [PREFIX]   every key, one per line, in listing order
    s3check.py sha BUCKET KEY         SHA-256 of the object's bytes
    s3check.py etag BUCKET KEY        the object's ETag, without quotes
    s3check.py bucket-exists BUCKET   prints yes or no
    s3check.py mkbucket BUCKET        creates a bucket
    s3check.py cleanup PREFIX         removes every bucket whose name starts with PREFIX
"""

import hashlib
import sys

from botocore.exceptions import ClientError

import compat


def main(argv):
    s3 = compat.s3_client()
    cmd, args = argv[0], argv[1:]
    if cmd == "keys":
        print("\n".join(compat.list_keys(s3, args[0], args[1] if len(args) > 1 else "")))
    elif cmd == "sha":
        body = s3.get_object(Bucket=args[0], Key=args[1])["Body"]
        h = hashlib.sha256()
        for chunk in iter(lambda: body.read(1 << 20), b""):
            h.update(chunk)
        print(h.hexdigest())
    elif cmd == "etag":
        print(s3.head_object(Bucket=args[0], Key=args[1])["ETag"].strip('"'))
    elif cmd == "bucket-exists":
        try:
            s3.head_bucket(Bucket=args[0])
            print("yes")
        except ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                raise
            print("no")
    elif cmd == "mkbucket":
        s3.create_bucket(Bucket=args[0])
    elif cmd == "cleanup":
        for b in s3.list_buckets().get("Buckets", []):
            if b["Name"].startswith(args[0]):
                compat.remove_bucket(s3, b["Name"])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
