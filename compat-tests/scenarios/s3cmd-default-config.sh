#!/usr/bin/env bash
# s3cmd with bucket_location left at its default, US: it signs for region
# "US" until the server's AuthorizationHeaderMalformed names us-east-1, then
# signs again for that. mb, put, get, ls, del, rb.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
s3cmd_env
sed -i '/^bucket_location/d' "$S3CMD_CONF"

step "the configuration signs for US"
configured_location() { s3cmd -c "$S3CMD_CONF" --dump-config | grep '^bucket_location'; }
check_output "bucket_location = US" "bucket_location s3cmd uses" configured_location

step "mb"
s3c -v mb "s3://$BUCKET" 2> mb.err
grep -q "Forwarding request to us-east-1" mb.err ||
    fail "s3cmd did not retry with the region from the error: $(tail -n 1 mb.err)"
check_output yes "bucket exists after mb" s3check bucket-exists "$BUCKET"

step "put and get"
rand_file a.bin 300000
s3c put a.bin "s3://$BUCKET/dir/a.bin"
check_output "$(sha a.bin)" "sha256 on the server" s3check sha "$BUCKET" dir/a.bin
s3c get "s3://$BUCKET/dir/a.bin" a.back
check_files_eq a.back a.bin "bytes of a.bin"

step "ls"
listed_keys() { s3c ls --recursive "s3://$BUCKET/" | awk '{ print $3, $4 }'; }
check_output "300000 s3://$BUCKET/dir/a.bin" "ls --recursive (size and name)" listed_keys
s3c ls > buckets.txt
grep -q "s3://$BUCKET\$" buckets.txt || fail "s3cmd ls does not list the bucket"

step "del and rb"
s3c del "s3://$BUCKET/dir/a.bin"
check_output "" "keys after del" s3check keys "$BUCKET"
s3c rb "s3://$BUCKET"
check_output no "bucket exists after rb" s3check bucket-exists "$BUCKET"
