#!/usr/bin/env bash
# aws cli v1: cp of a 150 MB file (multipart, 8 MiB parts) up and down.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
aws_env

step "mb"
awsc s3 mb "s3://$BUCKET"

step "cp 150 MB up"
rand_file big.bin 150M
awsc s3 cp big.bin "s3://$BUCKET/dir/big.bin" --only-show-errors
etag=$(s3check etag "$BUCKET" dir/big.bin)
check_eq "${etag##*-}" 19 "part count in the multipart ETag $etag"
check_eq "$(awsc s3api head-object --bucket "$BUCKET" --key dir/big.bin | jget ContentLength)" $((150 << 20)) "ContentLength"

step "cp 150 MB down"
awsc s3 cp "s3://$BUCKET/dir/big.bin" big.back --only-show-errors
check_eq "$(sha big.back)" "$(sha big.bin)" "sha256 of the downloaded file"
rm -f big.back big.bin
