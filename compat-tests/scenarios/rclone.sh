#!/usr/bin/env bash
# rclone (provider Other, path-style): mkdir, copy, check --download, size,
# lsjson, sync with deletions, delete with a filter, server-side copy between
# buckets, purge.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
rclone_env
DST="$BUCKET-dst"

step "mkdir and copy"
rcl mkdir "t:$BUCKET"
rand_tree src 6 20
rand_file src/d0/medium.bin 3M
rcl copy src "t:$BUCKET/tree"
tree_keys src tree/ > want.txt
s3check keys "$BUCKET" tree/ > got.txt
check_files_eq got.txt want.txt "listing after copy"

step "check --download"
rcl check --download src "t:$BUCKET/tree"

step "size"
rcl size --json "t:$BUCKET/tree" > size.json
check_eq "$(jget count < size.json)" "$(find src -type f | wc -l)" "object count"
check_eq "$(jget bytes < size.json)" "$(find src -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')" "total bytes"

step "lsjson"
rcl lsjson -R --files-only "t:$BUCKET/tree" > ls.json
python - ls.json src <<'PY' || fail "lsjson does not match the local tree"
import json, os, sys
got = {e["Path"]: e["Size"] for e in json.load(open(sys.argv[1]))}
root = sys.argv[2]
want = {os.path.relpath(os.path.join(d, f), root): os.path.getsize(os.path.join(d, f))
        for d, _, fs in os.walk(root) for f in fs}
if got != want:
    print("lsjson differs:", sorted(set(got.items()) ^ set(want.items()))[:5])
    sys.exit(1)
PY

step "sync with changes"
rm src/d1/f1.bin src/d2/sub/f0.bin
echo new > src/d3/new.txt
echo changed > src/d4/f2.bin
rcl sync src "t:$BUCKET/tree"
tree_keys src tree/ > want.txt
s3check keys "$BUCKET" tree/ > got.txt
check_files_eq got.txt want.txt "listing after sync"
check_eq "$(s3check sha "$BUCKET" tree/d4/f2.bin)" "$(sha src/d4/f2.bin)" "changed file after sync"
rcl check --download src "t:$BUCKET/tree"

step "delete with a filter"
rcl delete --include '/d5/**' "t:$BUCKET/tree"
check_output "" "keys under d5/ after delete" s3check keys "$BUCKET" tree/d5/
check_eq "$(s3check keys "$BUCKET" tree/ | wc -l)" "$(find src -type f -not -path 'src/d5/*' | wc -l)" "keys left after delete"

step "server-side copy between buckets"
rcl mkdir "t:$DST"
rcl copy "t:$BUCKET/tree" "t:$DST/copy" -v 2> ssc.log
check_eq "$(grep -c 'Copied (server-side copy)' ssc.log)" "$(s3check keys "$BUCKET" tree/ | wc -l)" "objects copied server-side"
rcl check "t:$BUCKET/tree" "t:$DST/copy" --download
s3check keys "$BUCKET" tree/ | sed 's|^tree/|copy/|' > want.txt
s3check keys "$DST" copy/ > got.txt
check_files_eq got.txt want.txt "listing of the copy"
check_eq "$(s3check sha "$DST" copy/d0/medium.bin)" "$(sha src/d0/medium.bin)" "sha256 of a copied object"

step "purge"
rcl purge "t:$BUCKET"
rcl purge "t:$DST"
check_eq "$(s3check bucket-exists "$BUCKET") $(s3check bucket-exists "$DST")" "no no" "buckets after purge"
