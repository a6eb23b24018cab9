#!/usr/bin/env bash
# aws cli v1: sync of ~500 small files, a second sync transfers nothing, a
# changed file is the only one sent again, sync --delete, sync back down.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
aws_env

step "mb"
awsc s3 mb "s3://$BUCKET"

step "sync up"
rand_tree src 10 50
# aws s3 sync compares LastModified with the mtime: make the files older.
find src -type f -exec touch -d '2 days ago' {} +
awsc s3 sync src "s3://$BUCKET/tree" --only-show-errors
tree_keys src tree/ > want.txt
s3check keys "$BUCKET" tree/ > got.txt
check_files_eq got.txt want.txt "listing after sync"

step "second sync transfers nothing"
awsc s3 sync src "s3://$BUCKET/tree" --no-progress > again.txt
[ ! -s again.txt ] || fail "second sync transferred: $(head -n 3 again.txt | tr '\n' ' ')"

step "a changed file is sent again"
echo changed > src/d3/f1.bin
awsc s3 sync src "s3://$BUCKET/tree" --no-progress > changed.txt
check_eq "$(grep -c '^upload:' changed.txt)" 1 "uploads after changing one file"
check_eq "$(s3check sha "$BUCKET" tree/d3/f1.bin)" "$(sha src/d3/f1.bin)" "sha256 of the changed object"

step "sync --delete"
rm src/d4/f2.bin src/d5/sub/f3.bin
awsc s3 sync src "s3://$BUCKET/tree" --delete --only-show-errors
tree_keys src tree/ > want.txt
s3check keys "$BUCKET" tree/ > got.txt
check_files_eq got.txt want.txt "listing after sync --delete"

step "sync down"
awsc s3 sync "s3://$BUCKET/tree" back --only-show-errors
check_trees_eq back src
