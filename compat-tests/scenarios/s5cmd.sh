#!/usr/bin/env bash
# s5cmd (its real binary): 1,000 small objects up and down in parallel, ls,
# rm of them all, rb.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
export AWS_ACCESS_KEY_ID="$COMPAT_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$COMPAT_SECRET_KEY" AWS_REGION=us-east-1
s5() { s5cmd --endpoint-url "$ENDPOINT" --numworkers 32 "$@"; }

step "mb"
s5 mb "s3://$BUCKET"

step "cp 1,000 files up"
rand_tree src 10 100
s5 cp 'src/*' "s3://$BUCKET/up/" > up.log
tree_keys src up/ > want.txt
s3check keys "$BUCKET" up/ > got.txt
check_eq "$(wc -l < got.txt)" 1000 "objects uploaded"
check_files_eq got.txt want.txt "listing after cp up"

step "ls"
s5 ls "s3://$BUCKET/up/*" | awk '{ print $NF }' | sed 's|^|up/|' | LC_ALL=C sort > ls.txt
check_files_eq ls.txt want.txt "s5cmd ls"

step "cp 1,000 objects down"
s5 cp "s3://$BUCKET/up/*" down/ > down.log
check_trees_eq down src

step "rm"
s5 rm "s3://$BUCKET/up/*" > rm.log
check_output "" "keys after rm" s3check keys "$BUCKET"
s5 rb "s3://$BUCKET"
check_eq "$(s3check bucket-exists "$BUCKET")" no "bucket exists after rb"
