#!/usr/bin/env bash
# A web app's assets bucket set up with aws cli v1, read by browsers
# (anonymous curl): nothing is public until a bucket policy opens public/*;
# GetBucketPolicyStatus says so; the rest stays private; a public access
# block (RestrictPublicBuckets) closes it again; a public-read object ACL
# opens one more object; an explicit Deny stops even the owner's deletes;
# once the policy is deleted anonymous reads are refused again.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$COMPAT_LIB/common.sh"
aws_env
api() { awsc s3api "$@"; }

# The HTTP status of an anonymous GET of KEY; its body into FILE.
anon_get() { # KEY FILE
    curl -s -o "$2" -w '%{http_code}' "$ENDPOINT/$BUCKET/$1"
}

step "a private bucket with assets"
api create-bucket --bucket "$BUCKET" > /dev/null
rand_file logo.png 40K
rand_file secret.txt 3K
awsc s3 cp logo.png "s3://$BUCKET/public/logo.png" --only-show-errors
awsc s3 cp secret.txt "s3://$BUCKET/private/secret.txt" --only-show-errors
check_eq "$(anon_get public/logo.png got.png)" 403 "an anonymous GET before any policy"

step "a bucket policy opens public/* to everyone"
cat > policy.json <<JSON
{"Version":"2012-10-17","Statement":[{"Sid":"PublicAssets","Effect":"Allow",
 "Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::$BUCKET/public/*"}]}
JSON
api put-bucket-policy --bucket "$BUCKET" --policy file://policy.json
check_eq "$(api get-bucket-policy-status --bucket "$BUCKET" | jget PolicyStatus.IsPublic)" true "policy status"
check_eq "$(anon_get public/logo.png got.png)" 200 "an anonymous GET of public/logo.png"
check_files_eq got.png logo.png "bytes of the public asset"
check_eq "$(anon_get private/secret.txt got.txt)" 403 "an anonymous GET of private/secret.txt"

step "RestrictPublicBuckets closes the public policy, and its removal reopens it"
api put-public-access-block --bucket "$BUCKET" --public-access-block-configuration \
    BlockPublicAcls=false,IgnorePublicAcls=false,BlockPublicPolicy=false,RestrictPublicBuckets=true
check_eq "$(anon_get public/logo.png got.png)" 403 "an anonymous GET under RestrictPublicBuckets"
api delete-public-access-block --bucket "$BUCKET"
check_eq "$(anon_get public/logo.png got.png)" 200 "an anonymous GET after the block is gone"

step "a public-read object ACL opens one private object"
api put-object-acl --bucket "$BUCKET" --key private/secret.txt --acl public-read
check_eq "$(anon_get private/secret.txt got.txt)" 200 "an anonymous GET of a public-read object"
check_files_eq got.txt secret.txt "bytes of the public-read object"

step "an explicit Deny beats the owner's own grant"
cat > deny.json <<JSON
{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::$BUCKET/public/*"},
 {"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::$BUCKET/public/*"}]}
JSON
api put-bucket-policy --bucket "$BUCKET" --policy file://deny.json
if api delete-object --bucket "$BUCKET" --key public/logo.png > /dev/null 2> denied.err; then
    fail "delete under a Deny succeeded"
fi
grep -q AccessDenied denied.err || fail "delete under a Deny: $(tail -n 1 denied.err)"
check_eq "$(anon_get public/logo.png got.png)" 200 "the asset is still there"

step "the policy deleted: anonymous reads refused again"
api delete-bucket-policy --bucket "$BUCKET"
check_eq "$(anon_get public/logo.png got.png)" 403 "an anonymous GET after the policy is gone"
awsc s3 rm "s3://$BUCKET/public/logo.png" --only-show-errors
api put-object-acl --bucket "$BUCKET" --key private/secret.txt --acl private
check_eq "$(anon_get private/secret.txt got.txt)" 403 "an anonymous GET once the ACL is private"
