#!/usr/bin/env bash
# s3cmd: mb, put, ls, get, a 40 MiB multipart put (15 MiB chunks), info,
# del, rb of a non-empty bucket refused, rb.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
s3cmd_env

step "mb"
s3c mb "s3://$BUCKET"
s3c ls > buckets.txt
grep -q "s3://$BUCKET\$" buckets.txt || fail "s3cmd ls does not list the bucket"

step "put and ls"
rand_file a.bin 5000
echo "hello" > b.txt
s3c put a.bin "s3://$BUCKET/dir/a.bin"
s3c put b.txt "s3://$BUCKET/b.txt"
check_eq "$(s3c ls "s3://$BUCKET/" | awk '{ print $NF }' | tr '\n' ' ')" "s3://$BUCKET/dir/ s3://$BUCKET/b.txt " "ls of the bucket"
check_eq "$(s3c ls --recursive "s3://$BUCKET/" | awk '{ print $3, $4 }' | tr '\n' ' ')" \
    "6 s3://$BUCKET/b.txt 5000 s3://$BUCKET/dir/a.bin " "ls --recursive (sizes and names)"

step "get"
s3c get "s3://$BUCKET/dir/a.bin" a.back
check_files_eq a.back a.bin "bytes of a.bin"

step "multipart put"
rand_file big.bin 40M
s3c put big.bin "s3://$BUCKET/big.bin"
etag=$(s3check etag "$BUCKET" big.bin)
check_eq "${etag##*-}" 3 "part count in the multipart ETag $etag"
s3c get "s3://$BUCKET/big.bin" big.back
check_eq "$(sha big.back)" "$(sha big.bin)" "sha256 of the multipart object"
s3c info "s3://$BUCKET/big.bin" > info.txt
grep -q "File size: $((40 << 20))" info.txt || fail "s3cmd info: $(grep -i size info.txt)"

step "del"
s3c del "s3://$BUCKET/b.txt"
check_eq "$(s3check keys "$BUCKET" | tr '\n' ' ')" "big.bin dir/a.bin " "keys after del"

step "rb of a non-empty bucket is refused"
if s3c rb "s3://$BUCKET" 2> rb.err; then fail "rb deleted a non-empty bucket"; fi
grep -q BucketNotEmpty rb.err || fail "expected BucketNotEmpty, got $(tail -n 1 rb.err)"

step "rb"
s3c del --recursive --force "s3://$BUCKET/"
s3c rb "s3://$BUCKET"
check_eq "$(s3check bucket-exists "$BUCKET")" no "bucket exists after rb"
