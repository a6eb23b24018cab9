#!/usr/bin/env bash
# aws cli v1: mb, cp of a 1 KiB file up and down, ls with prefixes, rb of a
# non-empty bucket refused, rm --recursive, rb.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
aws_env

step "mb"
awsc s3 mb "s3://$BUCKET"
awsc s3 ls > buckets.txt
grep -q " $BUCKET\$" buckets.txt || fail "aws s3 ls does not list the new bucket"

step "cp 1 KiB up and down"
rand_file small.bin 1024
awsc s3 cp small.bin "s3://$BUCKET/top.bin"
awsc s3 cp "s3://$BUCKET/top.bin" small.back
check_files_eq small.back small.bin "downloaded bytes"
check_eq "$(s3check sha "$BUCKET" top.bin)" "$(sha small.bin)" "sha256 seen through boto3"
check_eq "$(s3check etag "$BUCKET" top.bin)" "$(md5sum small.bin | cut -d' ' -f1)" "ETag of a single-part object"

step "ls with prefixes"
for k in a/b/1.txt a/b/2.txt a/c/3.txt a/4.txt z.txt; do
    echo "$k" > f.txt
    awsc s3 cp f.txt "s3://$BUCKET/$k" --only-show-errors
done
ls_names() { awsc s3 ls "$@" | awk '{ print ($1 == "PRE") ? $1 " " $2 : $NF }' | LC_ALL=C sort | tr '\n' ' '; }
check_eq "$(ls_names "s3://$BUCKET/")" "PRE a/ top.bin z.txt " "ls of the bucket root"
check_eq "$(ls_names "s3://$BUCKET/a/")" "4.txt PRE b/ PRE c/ " "ls of a/"
check_eq "$(ls_names "s3://$BUCKET/a/b/")" "1.txt 2.txt " "ls of a/b/"
check_eq "$(ls_names "s3://$BUCKET/a/b")" "PRE b/ " "ls of the partial prefix a/b"
check_eq "$(awsc s3 ls --recursive "s3://$BUCKET/" | awk '{ print $NF }' | tr '\n' ' ')" \
    "a/4.txt a/b/1.txt a/b/2.txt a/c/3.txt top.bin z.txt " "ls --recursive"

step "rb of a non-empty bucket is refused"
if awsc s3 rb "s3://$BUCKET" 2> rb.err; then fail "rb deleted a non-empty bucket"; fi
grep -q BucketNotEmpty rb.err || fail "rb of a non-empty bucket: expected BucketNotEmpty, got: $(tail -n 1 rb.err)"
check_eq "$(s3check keys "$BUCKET" | wc -l)" 6 "objects left after the refused rb"

step "rm --recursive"
awsc s3 rm --recursive "s3://$BUCKET/a/" --only-show-errors
check_eq "$(s3check keys "$BUCKET" | tr '\n' ' ')" "top.bin z.txt " "keys left after rm --recursive a/"
awsc s3 rm --recursive "s3://$BUCKET/" --only-show-errors
check_output "" "keys left after rm --recursive of the bucket" s3check keys "$BUCKET"

step "rb"
awsc s3 rb "s3://$BUCKET"
check_eq "$(s3check bucket-exists "$BUCKET")" no "bucket exists after rb"
