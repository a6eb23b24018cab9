#!/usr/bin/env bash
# aws cli v1 on a versioned bucket: two versions of a key, list-object-versions,
# get-object --version-id, rm leaves a delete marker, removing it restores.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
aws_env
api() { awsc s3api "$@"; }

step "versioned bucket"
api create-bucket --bucket "$BUCKET" > /dev/null
check_eq "$(api list-object-versions --bucket "$BUCKET" | jget Versions)" null "versions of an empty bucket"
api put-bucket-versioning --bucket "$BUCKET" --versioning-configuration Status=Enabled
check_eq "$(api get-bucket-versioning --bucket "$BUCKET" | jget Status)" Enabled "versioning status"

step "two versions"
echo "version one" > v1.txt
echo "version two, longer" > v2.txt
id1=$(api put-object --bucket "$BUCKET" --key doc.txt --body v1.txt | jget VersionId)
id2=$(api put-object --bucket "$BUCKET" --key doc.txt --body v2.txt | jget VersionId)
if [ -z "$id1" ] || [ "$id1" = null ] || [ "$id1" = "$id2" ]; then fail "version ids: '$id1' and '$id2'"; fi
api list-object-versions --bucket "$BUCKET" > versions.json
check_eq "$(jget 'Versions.#' < versions.json)" 2 "number of versions"
check_eq "$(jget Versions.0.VersionId < versions.json) $(jget Versions.0.IsLatest < versions.json)" "$id2 true" "latest version first"
check_eq "$(jget Versions.1.VersionId < versions.json) $(jget Versions.1.Size < versions.json)" "$id1 12" "older version"

step "get-object --version-id"
api get-object --bucket "$BUCKET" --key doc.txt --version-id "$id1" old.txt > /dev/null
check_files_eq old.txt v1.txt "bytes of the old version"
awsc s3 cp "s3://$BUCKET/doc.txt" cur.txt --only-show-errors
check_files_eq cur.txt v2.txt "bytes of the current version"

step "rm leaves a delete marker"
awsc s3 rm "s3://$BUCKET/doc.txt"
api list-object-versions --bucket "$BUCKET" > versions.json
check_eq "$(jget 'Versions.#' < versions.json) $(jget 'DeleteMarkers.#' < versions.json)" "2 1" "versions and delete markers"
marker=$(jget DeleteMarkers.0.VersionId < versions.json)
check_output "" "ls after rm" awsc s3 ls "s3://$BUCKET/"
api get-object --bucket "$BUCKET" --key doc.txt --version-id "$id1" old.txt > /dev/null
check_files_eq old.txt v1.txt "old version after the delete marker"

step "removing the delete marker restores the object"
api delete-object --bucket "$BUCKET" --key doc.txt --version-id "$marker" > /dev/null
awsc s3 cp "s3://$BUCKET/doc.txt" cur.txt --only-show-errors
check_files_eq cur.txt v2.txt "bytes after removing the marker"
