#!/usr/bin/env bash
# restic (Debian): init, backup of many files, a second backup that adds no
# data, check --read-data, restore and byte compare, forget --prune, check.
# (The paths backed up are relative, so a restore puts them under DIR/data.)
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
[ -z "$COMPAT_RESTIC_MISSING" ] || fail "$COMPAT_RESTIC_MISSING"
export RESTIC_REPOSITORY="s3:$ENDPOINT/$BUCKET/repo"
export RESTIC_PASSWORD="compat-test-password"
export RESTIC_CACHE_DIR="$WORK/restic-cache"
export AWS_ACCESS_KEY_ID="$COMPAT_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$COMPAT_SECRET_KEY" AWS_DEFAULT_REGION=us-east-1
summary() { grep '"message_type":"summary"' "$1" | jget "$2"; }

step "create the bucket and restic init"
s3check mkbucket "$BUCKET"
restic init

step "first backup"
rand_tree data 20 60
for i in 1 2 3 4 5; do rand_file "data/big$i.bin" 2M; done
restic backup --json --host compat data > backup1.json
check_eq "$(summary backup1.json files_new)" "$(find data -type f | wc -l)" "files_new in the first backup"
first_snap=$(summary backup1.json snapshot_id)

step "second backup adds no data"
restic backup --json --host compat data > backup2.json
check_eq "$(summary backup2.json files_new) $(summary backup2.json files_changed)" "0 0" "new and changed files in the second backup"
check_eq "$(summary backup2.json data_added)" 0 "data_added by the second backup"

step "third backup after a change"
echo "a change" >> data/d1/f1.bin
restic backup --json --host compat data > backup3.json
check_eq "$(summary backup3.json files_changed)" 1 "files_changed in the third backup"

step "check --read-data"
restic check --read-data

step "restore and compare"
restic restore latest --target restored
check_trees_eq restored/data data
restic restore "$first_snap" --target first
check_eq "$(sha first/data/d1/f1.bin)" "$(restic dump "$first_snap" data/d1/f1.bin | sha256sum | cut -d' ' -f1)" "dump of the first snapshot"

step "forget --prune"
restic forget --keep-last 1 --prune
check_eq "$(restic snapshots --json | jget '#')" 1 "snapshots after forget"

step "check after prune"
restic check --read-data
rm -rf restored
restic restore latest --target restored
check_trees_eq restored/data data
