#!/usr/bin/env bash
# Builds the image tessera:local from the release `tessera` binary, with no
# base image (nothing is pulled): FROM scratch plus the binary, the shared
# libraries it loads (ldd, dynamic loader included), CA certificates, a
# minimal /etc and an empty /tmp. Then, unless told not to, writes the
# two-datacenter cluster that docker/compose.two-dc.yml runs (`tessera init`
# into docker/cluster/, once).
#
#   docker/build-image.sh                  cargo build --release, then the image
#   TESSERA_BIN=path docker/build-image.sh use this binary instead of building
#   docker/build-image.sh --no-cluster     only the image
#
# Idempotent: when the binary, its libraries and the Dockerfile are what the
# image was built from (a fingerprint kept in its labels), nothing is built;
# an existing cluster directory is left alone.
#
# Environment: TESSERA_BIN, TESSERA_IMAGE (default tessera:local),
# TESSERA_CLUSTER_DIR (default docker/cluster), TESSERA_INIT_ARGS (more
# `tessera init` flags; default "--data-shards 3 --parity-shards 3 --disks 2"),
# CARGO_TARGET_DIR.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
IMAGE="${TESSERA_IMAGE:-tessera:local}"
CLUSTER_DIR="${TESSERA_CLUSTER_DIR:-$HERE/cluster}"
CLUSTER=1

note() { printf 'build-image: %s\n' "$*" >&2; }
die() { note "$*"; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
    --no-cluster) CLUSTER=0; shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done

command -v docker >/dev/null || die "docker is not installed"
command -v ldd >/dev/null || die "ldd is needed to find the binary's libraries"

# ------------------------------------------------------------------ binary

if [ -z "${TESSERA_BIN:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera-target}"
    note "cargo build --release -p tessera-server --bin tessera (target $CARGO_TARGET_DIR)"
    (cd "$REPO" && cargo build --release --locked -p tessera-server --bin tessera) ||
        die "cargo build failed"
    TESSERA_BIN="$CARGO_TARGET_DIR/release/tessera"
fi
[ -x "$TESSERA_BIN" ] || die "TESSERA_BIN=$TESSERA_BIN is not an executable"
TESSERA_BIN=$(cd "$(dirname "$TESSERA_BIN")" && pwd)/$(basename "$TESSERA_BIN")

# ----------------------------------------------------------- build context

# Rebuilt from nothing each time (a few MB): what is in it is exactly what
# the image holds.
CONTEXT=$(mktemp -d "${TMPDIR:-/tmp}/tessera-image.XXXXXX")
trap 'rm -rf "$CONTEXT"' EXIT
ROOT="$CONTEXT/rootfs"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/etc" "$ROOT/tmp" "$ROOT/data" "$ROOT/config"
chmod 1777 "$ROOT/tmp"
# Release builds carry debug info (a hundred MB); symbols stay for backtraces.
if command -v strip >/dev/null; then
    strip --strip-debug -o "$ROOT/usr/local/bin/tessera" "$TESSERA_BIN" || die "strip failed"
else
    cp "$TESSERA_BIN" "$ROOT/usr/local/bin/tessera"
fi

# Every library ldd names, at the path the binary will look for it, as a
# regular file (symlinks followed). Lines look like
#   libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)
#   /lib64/ld-linux-x86-64.so.2 (0x…)
#   linux-vdso.so.1 (0x…)          (in the kernel: nothing to copy)
LIBS=()
while read -r line; do
    case "$line" in
    *"not found"*) die "ldd: a library of $TESSERA_BIN is missing: $line" ;;
    *" => /"*) lib=${line#* => }; lib=${lib%% (*} ;;
    /*) lib=${line%% (*} ;;
    *) continue ;;
    esac
    LIBS+=("$lib")
done < <(ldd "$TESSERA_BIN" 2>&1 || true)
[ "${#LIBS[@]}" -gt 0 ] || note "ldd lists no libraries: taking $TESSERA_BIN for a static binary"
for lib in "${LIBS[@]}"; do
    [ -e "$lib" ] || die "ldd names $lib, which does not exist"
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
done

# Trust roots for HTTPS to S3 buckets used as nodes (rustls-native-certs
# reads SSL_CERT_FILE, set below).
CA_BUNDLE=""
for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
    if [ -s "$f" ]; then CA_BUNDLE=$f; break; fi
done
if [ -n "$CA_BUNDLE" ]; then
    mkdir -p "$ROOT/etc/ssl/certs"
    cp -L "$CA_BUNDLE" "$ROOT/etc/ssl/certs/ca-certificates.crt"
else
    note "no CA bundle on this host: HTTPS to bucket nodes will need their ca_file"
fi

# Name lookups (service names on compose networks) through /etc/hosts and
# Docker's DNS; glibc ≥ 2.34 has files and dns built into libc itself.
printf 'hosts: files dns\n' > "$ROOT/etc/nsswitch.conf"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOT/etc/group"

VERSION=$("$TESSERA_BIN" --version | awk '{print $2}')
cat > "$CONTEXT/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\
    NO_COLOR=1 \\
    TESSERA_DATA_DIR=/data \\
    HOME=/data
WORKDIR /data
# S3, admin (metrics, health, admin API), cluster (raft), storage node, node metrics
EXPOSE 9000 9001 7000 7100 9101
# Gateways answer /health/ready on the admin port; nodes and the witness
# are given their own URL by the compose files.
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \\
    CMD ["/usr/local/bin/tessera", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/tessera"]
CMD ["serve"]
LABEL org.opencontainers.image.title="tessera" \\
      org.opencontainers.image.description="Tessera, an S3-compatible object store" \\
      org.opencontainers.image.version="$VERSION"
EOF

# What the image is made of: every file's path, mode and bytes.
FINGERPRINT=$(cd "$CONTEXT" && find . -type f -o -type d | LC_ALL=C sort |
    while read -r f; do
        if [ -f "$f" ]; then printf '%s %s %s\n' "$f" "$(stat -c %a "$f")" "$(sha256sum < "$f" | cut -c1-64)"
        else printf '%s %s\n' "$f" "$(stat -c %a "$f")"; fi
    done | sha256sum | cut -c1-64)
printf 'LABEL tessera.fingerprint="%s"\n' "$FINGERPRINT" >> "$CONTEXT/Dockerfile"

have=$(docker image inspect --format '{{index .Config.Labels "tessera.fingerprint"}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$FINGERPRINT" ]; then
    note "$IMAGE is up to date (tessera $VERSION)"
else
    note "building $IMAGE (tessera $VERSION, ${#LIBS[@]} libraries)"
    # The classic builder: no buildx plugin is needed, and a FROM scratch
    # build has nothing BuildKit would do better.
    DOCKER_BUILDKIT=0 docker build --quiet --tag "$IMAGE" "$CONTEXT" >/dev/null 2>"$CONTEXT/build.err" ||
        { cat "$CONTEXT/build.err" >&2; die "docker build failed"; }
    note "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}'))"
fi

# ----------------------------------------------------------------- cluster

# The two-datacenter cluster of compose.two-dc.yml: configs named after the
# compose services, certificates, each process's data directory.
if [ "$CLUSTER" = 1 ]; then
    if [ -f "$CLUSTER_DIR/ca.pem" ]; then
        note "cluster directory $CLUSTER_DIR exists: kept (remove it, after docker-compose down, to start a new cluster)"
    elif [ -e "$CLUSTER_DIR" ] && [ -n "$(ls -A "$CLUSTER_DIR")" ]; then
        # What docker-compose up leaves when it ran before this script: the
        # mount points it created, no cluster.
        die "$CLUSTER_DIR holds no cluster (no ca.pem) but is not empty: docker-compose -f docker/compose.two-dc.yml down, remove it, and run this again"
    elif ! "$TESSERA_BIN" init --help 2>/dev/null | grep -q -- '--service-hosts'; then
        note "this tessera cannot write a multi-member cluster yet (no init --service-hosts): skipped $CLUSTER_DIR"
    else
        note "writing the two-datacenter cluster into $CLUSTER_DIR"
        # 3+3 on two disks a node: each site keeps three shards (k) of every
        # segment, and its six stores take whole new segments when the other
        # site is lost.
        read -ra init_args <<<"${TESSERA_INIT_ARGS:---data-shards 3 --parity-shards 3 --disks 2}"
        "$TESSERA_BIN" init --out "$CLUSTER_DIR" --nodes 6 --gateways 4 --sites dc-a,dc-b \
            --witness --service-hosts "${init_args[@]}" > "$CLUSTER_DIR.init.log" 2>&1 ||
            { cat "$CLUSTER_DIR.init.log" >&2; rm -rf "$CLUSTER_DIR" "$CLUSTER_DIR.init.log"; die "tessera init failed"; }
        chmod 600 "$CLUSTER_DIR.init.log"
        mv "$CLUSTER_DIR.init.log" "$CLUSTER_DIR/init.log"
    fi
fi
