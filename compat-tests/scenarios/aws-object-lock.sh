#!/usr/bin/env bash
# aws cli v1 backing up into a bucket with object lock and a default
# retention: a backed-up version cannot be deleted (AccessDenied) while its
# retention lasts, `aws s3 rm` only adds a delete marker, a new backup is
# always a new version; a short compliance retention set with
# put-object-retention ends and the version can then be deleted; legal holds;
# versioning cannot be suspended.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
aws_env
api() { awsc s3api "$@"; }

# A retain-until date SECS seconds from now, as the aws cli takes it.
in_secs() { date -u -d "+$1 seconds" +%Y-%m-%dT%H:%M:%SZ; }

# Runs an aws command that must fail with CODE.
expect_code() { # CODE WHAT CMD [ARG...]
    local code=$1 what=$2
    shift 2
    if "$@" > /dev/null 2> refused.err; then fail "$what: succeeded, want $code"; fi
    grep -q "$code" refused.err || fail "$what: want $code, got: $(tail -n 1 refused.err)"
}

step "bucket with object lock and a default retention"
api create-bucket --bucket "$BUCKET" --object-lock-enabled-for-bucket > /dev/null
check_eq "$(api get-bucket-versioning --bucket "$BUCKET" | jget Status)" Enabled "versioning of a lock bucket"
api put-object-lock-configuration --bucket "$BUCKET" --object-lock-configuration \
    '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"GOVERNANCE","Days":1}}}'
api get-object-lock-configuration --bucket "$BUCKET" > config.json
check_eq "$(jget ObjectLockConfiguration.Rule.DefaultRetention.Mode < config.json) $(jget ObjectLockConfiguration.Rule.DefaultRetention.Days < config.json)" \
    "GOVERNANCE 1" "default retention"
expect_code InvalidBucketState "suspending versioning" \
    api put-bucket-versioning --bucket "$BUCKET" --versioning-configuration Status=Suspended

step "a backup gets the default retention"
rand_file monday.tar 300K
awsc s3 cp monday.tar "s3://$BUCKET/backups/db.tar" --only-show-errors
v1=$(api list-object-versions --bucket "$BUCKET" --prefix backups/db.tar | jget Versions.0.VersionId)
api get-object-retention --bucket "$BUCKET" --key backups/db.tar --version-id "$v1" > retention.json
check_eq "$(jget Retention.Mode < retention.json)" GOVERNANCE "retention mode of the backup"
until_day=$(jget Retention.RetainUntilDate < retention.json | cut -c1-10)
check_eq "$until_day" "$(date -u -d '+1 day' +%Y-%m-%d)" "retention ends a day after the backup"

step "the backed-up version cannot be deleted"
expect_code AccessDenied "delete-object --version-id of a retained version" \
    api delete-object --bucket "$BUCKET" --key backups/db.tar --version-id "$v1"
expect_code AccessDenied "shortening the retention without bypass" \
    api put-object-retention --bucket "$BUCKET" --key backups/db.tar --version-id "$v1" \
    --retention "Mode=GOVERNANCE,RetainUntilDate=$(in_secs 60)"

step "rm adds a delete marker, a new backup is a new version, the old one stays"
awsc s3 rm "s3://$BUCKET/backups/db.tar" > /dev/null
rand_file tuesday.tar 200K
awsc s3 cp tuesday.tar "s3://$BUCKET/backups/db.tar" --only-show-errors
api list-object-versions --bucket "$BUCKET" > versions.json
check_eq "$(jget 'Versions.#' < versions.json) $(jget 'DeleteMarkers.#' < versions.json)" "2 1" "versions and delete markers"
api get-object --bucket "$BUCKET" --key backups/db.tar --version-id "$v1" old.tar > /dev/null
check_files_eq old.tar monday.tar "bytes of the protected backup"
awsc s3 cp "s3://$BUCKET/backups/db.tar" cur.tar --only-show-errors
check_files_eq cur.tar tuesday.tar "bytes of the newest backup"

step "a short compliance retention ends, then the version can be deleted"
rand_file short.bin 10K
# Long enough for three aws cli calls on a loaded machine (each can take
# seconds to start): the refusals below must happen inside it.
until=$(in_secs 15)
vs=$(api put-object --bucket "$BUCKET" --key short.bin --body short.bin \
    --object-lock-mode COMPLIANCE --object-lock-retain-until-date "$until" | jget VersionId)
check_eq "$(api head-object --bucket "$BUCKET" --key short.bin | jget ObjectLockMode)" COMPLIANCE "lock mode on HEAD"
expect_code AccessDenied "deleting a compliance version with bypass" \
    api delete-object --bucket "$BUCKET" --key short.bin --version-id "$vs" --bypass-governance-retention
expect_code AccessDenied "shortening a compliance retention" \
    api put-object-retention --bucket "$BUCKET" --key short.bin --version-id "$vs" \
    --retention "Mode=COMPLIANCE,RetainUntilDate=$(in_secs 2)" --bypass-governance-retention
while [ "$(date -u +%s)" -le "$(date -u -d "$until" +%s)" ]; do sleep 1; done
api delete-object --bucket "$BUCKET" --key short.bin --version-id "$vs" > /dev/null
check_eq "$(api list-object-versions --bucket "$BUCKET" --prefix short.bin | jget Versions)" null "versions of the expired object"

step "legal hold"
api put-object-legal-hold --bucket "$BUCKET" --key backups/db.tar --version-id "$v1" --legal-hold Status=ON
check_eq "$(api get-object-legal-hold --bucket "$BUCKET" --key backups/db.tar --version-id "$v1" | jget LegalHold.Status)" ON "legal hold status"
expect_code AccessDenied "deleting a version under legal hold, with bypass" \
    api delete-object --bucket "$BUCKET" --key backups/db.tar --version-id "$v1" --bypass-governance-retention
api put-object-legal-hold --bucket "$BUCKET" --key backups/db.tar --version-id "$v1" --legal-hold Status=OFF

step "the owner bypasses governance to clean up"
api list-object-versions --bucket "$BUCKET" > versions.json
for kind in Versions DeleteMarkers; do
    for ((i = 0; i < $(jget "$kind.#" < versions.json); i++)); do
        api delete-object --bucket "$BUCKET" --key "$(jget "$kind.$i.Key" < versions.json)" \
            --version-id "$(jget "$kind.$i.VersionId" < versions.json)" --bypass-governance-retention > /dev/null
    done
done
check_eq "$(api list-object-versions --bucket "$BUCKET" | jget Versions)" null "versions left"
api delete-bucket --bucket "$BUCKET"
