#!/usr/bin/env bash
# aws cli v1 s3api: put-object with metadata, head-object, get-object --range,
# copy-object (COPY and REPLACE), put/get-object-tagging.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
aws_env
api() { awsc s3api "$@"; }

step "create-bucket and put-object with metadata"
api create-bucket --bucket "$BUCKET" > /dev/null
rand_file obj.bin 100000
api put-object --bucket "$BUCKET" --key docs/obj.bin --body obj.bin --content-type application/x-test \
    --metadata color=blue,shape=round --cache-control max-age=60 > put.json
check_eq "$(jget ETag < put.json)" "\"$(md5sum obj.bin | cut -d' ' -f1)\"" "ETag returned by put-object"

step "head-object"
api head-object --bucket "$BUCKET" --key docs/obj.bin > head.json
check_eq "$(jget ContentLength < head.json)" 100000 "ContentLength"
check_eq "$(jget ContentType < head.json)" application/x-test "ContentType"
check_eq "$(jget CacheControl < head.json)" max-age=60 "CacheControl"
check_eq "$(jget Metadata < head.json)" '{"color": "blue", "shape": "round"}' "user metadata"
if api head-object --bucket "$BUCKET" --key docs/missing 2> missing.err; then fail "head-object of a missing key succeeded"; fi
grep -q '(404)' missing.err || fail "head-object of a missing key: expected 404, got $(tail -n 1 missing.err)"

step "get-object --range"
api get-object --bucket "$BUCKET" --key docs/obj.bin --range bytes=1000-1999 part.bin > range.json
dd if=obj.bin of=want.bin bs=1000 skip=1 count=1 status=none
check_files_eq part.bin want.bin "bytes 1000-1999"
check_eq "$(jget ContentRange < range.json)" "bytes 1000-1999/100000" "ContentRange"
api get-object --bucket "$BUCKET" --key docs/obj.bin --range bytes=-500 suffix.bin > /dev/null
tail -c 500 obj.bin > want.bin
check_files_eq suffix.bin want.bin "suffix range bytes=-500"
api get-object --bucket "$BUCKET" --key docs/obj.bin --range bytes=99990- open.bin > /dev/null
tail -c 10 obj.bin > want.bin
check_files_eq open.bin want.bin "open range bytes=99990-"
if api get-object --bucket "$BUCKET" --key docs/obj.bin --range bytes=200000-300000 x.bin 2> inv.err; then
    fail "a range past the end succeeded"
fi
grep -q InvalidRange inv.err || fail "range past the end: expected InvalidRange, got $(tail -n 1 inv.err)"

step "copy-object keeps metadata"
api copy-object --bucket "$BUCKET" --key copies/a.bin --copy-source "$BUCKET/docs/obj.bin" > copy.json
check_eq "$(s3check sha "$BUCKET" copies/a.bin)" "$(sha obj.bin)" "sha256 of the copy"
check_eq "$(api head-object --bucket "$BUCKET" --key copies/a.bin | jget Metadata)" '{"color": "blue", "shape": "round"}' "metadata of the copy"

step "copy-object with REPLACE"
api copy-object --bucket "$BUCKET" --key copies/b.bin --copy-source "$BUCKET/docs/obj.bin" \
    --metadata-directive REPLACE --metadata color=red --content-type text/plain > /dev/null
api head-object --bucket "$BUCKET" --key copies/b.bin > headb.json
check_eq "$(jget Metadata < headb.json)" '{"color": "red"}' "replaced metadata"
check_eq "$(jget ContentType < headb.json)" text/plain "replaced ContentType"
check_eq "$(s3check sha "$BUCKET" copies/b.bin)" "$(sha obj.bin)" "sha256 of the REPLACE copy"

step "object tagging"
api put-object-tagging --bucket "$BUCKET" --key docs/obj.bin \
    --tagging 'TagSet=[{Key=project,Value=tessera},{Key=tier,Value=gold}]'
check_eq "$(api get-object-tagging --bucket "$BUCKET" --key docs/obj.bin | jget TagSet)" \
    '[{"Key": "project", "Value": "tessera"}, {"Key": "tier", "Value": "gold"}]' "TagSet"
api delete-object-tagging --bucket "$BUCKET" --key docs/obj.bin
check_eq "$(api get-object-tagging --bucket "$BUCKET" --key docs/obj.bin | jget TagSet)" '[]' "TagSet after delete-object-tagging"
check_eq "$(s3check sha "$BUCKET" docs/obj.bin)" "$(sha obj.bin)" "object bytes after tagging"
