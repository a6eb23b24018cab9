#!/usr/bin/env bash
# rclone: a 200 MiB file, uploaded in 16 MiB parts (cutoff below its size),
# checked with check --download and read back byte for byte.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
rclone_env

step "mkdir"
rcl mkdir "t:$BUCKET"

step "copy 200 MiB up"
mkdir src
rand_file src/big.bin 200M
rcl copy src "t:$BUCKET" --s3-upload-cutoff 100Mi --s3-chunk-size 16Mi --s3-upload-concurrency 4
etag=$(s3check etag "$BUCKET" big.bin)
check_eq "${etag##*-}" 13 "part count in the multipart ETag $etag"

step "check --download"
rcl check --download src "t:$BUCKET"

step "copy down"
rcl copy "t:$BUCKET/big.bin" back
check_eq "$(sha back/big.bin)" "$(sha src/big.bin)" "sha256 of the downloaded file"
rm -rf src back
