#!/usr/bin/env bash
# aws cli v1: s3 presign (its default query signature, then SigV4), curl
# downloads with the URL; a missing key gives 404 NoSuchKey, a URL used for
# another key 403 SignatureDoesNotMatch.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
aws_env

step "mb and cp"
awsc s3 mb "s3://$BUCKET"
rand_file obj.bin 300K
awsc s3 cp obj.bin "s3://$BUCKET/some dir/obj+1.bin" --only-show-errors
awsc s3 cp obj.bin "s3://$BUCKET/a.bin" --only-show-errors
echo other > b.txt
awsc s3 cp b.txt "s3://$BUCKET/b.bin" --only-show-errors

presign_checks() { # LABEL
    step "$1: presign and curl"
    url=$(awsc s3 presign "s3://$BUCKET/some dir/obj+1.bin" --expires-in 600)
    check_eq "$(curl -s -o got.bin -w '%{http_code}' "$url")" 200 "$1: HTTP status of the presigned GET"
    check_files_eq got.bin obj.bin "$1: bytes fetched with the presigned URL"

    step "$1: presigned URL of a missing key"
    url=$(awsc s3 presign "s3://$BUCKET/missing.bin" --expires-in 600)
    check_eq "$(curl -s -o missing.xml -w '%{http_code}' "$url")" 404 "$1: HTTP status for a missing key"
    grep -q '<Code>NoSuchKey</Code>' missing.xml || fail "$1: missing key: expected NoSuchKey, got $(head -c 300 missing.xml)"

    step "$1: URL used for another key"
    url=$(awsc s3 presign "s3://$BUCKET/a.bin" --expires-in 600)
    check_eq "$(curl -s -o bad.xml -w '%{http_code}' "${url/\/a.bin?//b.bin?}")" 403 "$1: HTTP status for another key"
    grep -q '<Code>SignatureDoesNotMatch</Code>' bad.xml || fail "$1: expected SignatureDoesNotMatch, got $(head -c 300 bad.xml)"
}

presign_checks "default signature"
cat >> "$HOME/.aws/config" <<EOF2
    signature_version = s3v4
EOF2
presign_checks "SigV4"
[[ "$(awsc s3 presign "s3://$BUCKET/a.bin")" == *X-Amz-Signature=* ]] || fail "the SigV4 setting did not take"
