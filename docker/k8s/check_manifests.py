"""What the Kubernetes schemas cannot say about docker/k8s/ (run by validate.sh).

    check_manifests.py K8S_DIR              check every rule below; exit 1 on any breach
    check_manifests.py K8S_DIR --init-dir DIR
                                            also check them against the configs
                                            `tessera init --service-hosts` wrote in DIR
    check_manifests.py K8S_DIR --write-dc-b write dc-b/ from dc-a/ (sites swapped)

Rules, each a way these manifests could be wrong and still pass the schemas:
  - dc-b/ is dc-a/ with the sites swapped (one shape, two clusters);
  - every StatefulSet: podManagementPolicy Parallel, a governing headless
    Service with publishNotReadyAddresses, volumeClaimTemplates mounted,
    hostname anti-affinity and a zone spread (not for the witness, which is
    one pod), liveness /health/live and readiness /health/ready on a port
    the container declares, args naming a config `tessera init` writes;
  - every member a site's configs name (gateways and nodes of both sites,
    the witness) is a Service in each cluster that needs it: a per-member
    Service selecting a pod its StatefulSet makes, or an ExternalName;
    per-member Services publish not-ready addresses (raft needs members
    before they are ready);
  - PodDisruptionBudgets: storage nodes maxUnavailable = parity / shards
    per node, gateways leave the five voters able to lose one more;
  - Services select pods that exist, on ports the pods declare;
  - the seed Secret has an item for every gateway pod;
  - with --init-dir: every pod has the config init wrote for its name and
    every config a pod, the listeners are on the ports the containers
    declare, data_dir is the volume, the certificates are under /config,
    and every address a config names is a Service with that port.
"""

import pathlib
import sys

import yaml

SITES = ("dc-a", "dc-b")
GATEWAYS_PER_SITE = 2
NODES_PER_SITE = 6
PARITY = 2  # 4+2
SHARDS_PER_NODE = 1  # six nodes per site, one shard of a segment's site copy each
VOTERS = 2 * GATEWAYS_PER_SITE + 1  # and the witness

errors = []


def err(where, msg):
    errors.append(f"{where}: {msg}")


def swap_sites(text):
    return text.replace("dc-a", "\0").replace("dc-b", "dc-a").replace("\0", "dc-b")


def load(directory):
    docs = []
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def pods_of(sts):
    spec = sts["spec"]
    start = spec.get("ordinals", {}).get("start", 0)
    name = sts["metadata"]["name"]
    return [f"{name}-{i}" for i in range(start, start + spec.get("replicas", 1))]


def member_names(site):
    gws = [f"{site}-gw-{i}" for i in range(1, GATEWAYS_PER_SITE + 1)]
    nodes = [f"{site}-node-{i}" for i in range(1, NODES_PER_SITE + 1)]
    return gws, nodes


def check_probe(where, container, kind, path):
    probe = container.get(kind)
    if not probe:
        err(where, f"no {kind}")
        return
    get = probe.get("httpGet", {})
    if get.get("path") != path:
        err(where, f"{kind} asks {get.get('path')}, not {path}")
    ports = {p["name"] for p in container.get("ports", [])}
    if get.get("port") not in ports:
        err(where, f"{kind} on port {get.get('port')!r}, which the container does not declare")


def check_cluster(name, docs, needed_members):
    by_kind = {}
    for path, doc in docs:
        by_kind.setdefault(doc["kind"], []).append((path, doc))
    services = {d["metadata"]["name"]: (p, d) for p, d in by_kind.get("Service", [])}
    statefulsets = [d for _, d in by_kind.get("StatefulSet", [])]
    pdbs = [d for _, d in by_kind.get("PodDisruptionBudget", [])]
    all_pods = {}  # pod name -> (statefulset, labels, container)
    for sts in statefulsets:
        tmpl = sts["spec"]["template"]
        for pod in pods_of(sts):
            all_pods[pod] = (sts, tmpl["metadata"]["labels"], tmpl["spec"]["containers"][0])

    for sts in statefulsets:
        sname = sts["metadata"]["name"]
        where = f"{name}: StatefulSet {sname}"
        spec = sts["spec"]
        tmpl = spec["template"]
        labels = tmpl["metadata"]["labels"]
        container = tmpl["spec"]["containers"][0]
        witness = labels.get("app.kubernetes.io/component") == "witness"
        if not labels_match(spec["selector"]["matchLabels"], labels):
            err(where, "selector does not match its pod labels")
        if spec.get("podManagementPolicy") != "Parallel":
            err(where, "podManagementPolicy is not Parallel")
        gov = services.get(spec["serviceName"])
        if not gov:
            err(where, f"governing Service {spec['serviceName']} missing")
        else:
            gs = gov[1]["spec"]
            if gs.get("clusterIP") != "None":
                err(where, f"governing Service {spec['serviceName']} is not headless")
            if gs.get("publishNotReadyAddresses") is not True:
                err(where, f"governing Service {spec['serviceName']} hides not-ready pods")
        claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
        mounts = {m["name"] for m in container.get("volumeMounts", [])}
        if not claims:
            err(where, "no volumeClaimTemplates")
        for c in claims - mounts:
            err(where, f"claim {c} is not mounted")
        if not witness:
            aff = tmpl["spec"].get("affinity", {}).get("podAntiAffinity", {})
            req = aff.get("requiredDuringSchedulingIgnoredDuringExecution", [])
            if not any(t.get("topologyKey") == "kubernetes.io/hostname"
                       and labels_match(t["labelSelector"]["matchLabels"], labels) for t in req):
                err(where, "no required hostname anti-affinity against its own pods")
            spread = tmpl["spec"].get("topologySpreadConstraints", [])
            if not any(t.get("topologyKey") == "topology.kubernetes.io/zone"
                       and labels_match(t["labelSelector"]["matchLabels"], labels) for t in spread):
                err(where, "no zone spread over its own pods")
        check_probe(where, container, "livenessProbe", "/health/live")
        check_probe(where, container, "readinessProbe", "/health/ready")
        args = container.get("args", [])
        if "--config" not in args:
            err(where, "no --config")
        else:
            cfg = args[args.index("--config") + 1]
            if not cfg.startswith("/config/") or not cfg.endswith(".toml"):
                err(where, f"config {cfg} is not a /config/<member>.toml")
            if "$(POD_NAME)" in cfg:
                envs = {e["name"]: e for e in container.get("env", [])}
                ref = envs.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {})
                if ref.get("fieldPath") != "metadata.name":
                    err(where, "$(POD_NAME) is not the pod's name from the downward API")
        if witness:
            if "--role" not in args or args[args.index("--role") + 1] != "witness":
                err(where, "the witness runs without --role witness")
        # The seed Secret: an item per pod that mounts it by name.
        for vol in tmpl["spec"].get("volumes", []):
            if vol.get("secret", {}).get("secretName") == "tessera-seed":
                keys = {i["key"] for i in vol["secret"].get("items", [])}
                uses_pod_name = any("$(POD_NAME)" in m.get("subPathExpr", "")
                                    for m in container["volumeMounts"])
                for pod in (pods_of(sts) if uses_pod_name else ["witness"]):
                    for f in ("master.key", "credentials"):
                        if f"{pod}.{f}" not in keys:
                            err(where, f"seed Secret has no item {pod}.{f}")
                if vol["secret"].get("defaultMode", 0o644) & 0o077:
                    err(where, "seed files readable by others: tessera refuses them")
        # Its disruption budget.
        component = labels.get("app.kubernetes.io/component")
        mine = [p for p in pdbs if labels_match(p["spec"]["selector"]["matchLabels"], labels)]
        if witness:
            continue
        if len(mine) != 1:
            err(where, f"{len(mine)} PodDisruptionBudgets select it, not 1")
            continue
        budget = mine[0]["spec"].get("maxUnavailable")
        if component == "storage-node":
            want = PARITY // SHARDS_PER_NODE
            if budget != want:
                err(where, f"PDB maxUnavailable {budget}, the code's parity allows {want}")
        elif component == "gateway":
            tolerate = (VOTERS - 1) // 2
            if not isinstance(budget, int) or budget < 1 or budget >= tolerate:
                err(where, f"PDB maxUnavailable {budget}: {VOTERS} voters lose quorum past {tolerate}"
                           " down, and one must stay for an unplanned failure")

    for sname, (path, svc) in services.items():
        where = f"{name}: Service {sname} ({path.name})"
        spec = svc["spec"]
        if spec.get("type") == "ExternalName":
            if not spec.get("externalName"):
                err(where, "ExternalName without a name")
            continue
        sel = spec.get("selector", {})
        pods = [p for p, (_, lbl, _) in all_pods.items()
                if labels_match(sel, dict(lbl, **{"statefulset.kubernetes.io/pod-name": p}))]
        if not pods:
            err(where, f"selects no pod: {sel}")
            continue
        for port in spec.get("ports", []):
            for pod in pods:
                declared = {p["name"] for p in all_pods[pod][2].get("ports", [])}
                if port.get("targetPort") not in declared:
                    err(where, f"targets port {port.get('targetPort')!r}, which {pod} does not declare")

    for member in needed_members:
        if member not in services:
            err(name, f"no Service named {member}: the configs reach it by that name")
            continue
        spec = services[member][1]["spec"]
        if spec.get("type") == "ExternalName":
            continue
        sel = spec.get("selector", {})
        pods = [p for p, (_, lbl, _) in all_pods.items()
                if labels_match(sel, dict(lbl, **{"statefulset.kubernetes.io/pod-name": p}))]
        if len(pods) != 1 or (member in all_pods and pods != [member]):
            err(name, f"Service {member} selects {pods}, not the one pod of that member")
        if spec.get("publishNotReadyAddresses") is not True:
            err(name, f"Service {member} hides its member until it is ready (raft needs it before)")
    return services, all_pods


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def check_init(clusters, init_dir):
    """The manifests against the configs `tessera init --service-hosts` wrote."""
    import tomllib

    for cluster, (services, pods) in clusters.items():
        prefix = "witness" if cluster == "witness" else f"{cluster}-"
        configs = {p.stem: p for p in init_dir.glob("*.toml") if p.stem.startswith(prefix)}
        for pod, (sts, _, container) in pods.items():
            member = "witness" if cluster == "witness" else pod
            where = f"{cluster}: pod {pod}"
            if member not in configs:
                err(where, f"tessera init wrote no {member}.toml for it")
                continue
            cfg = tomllib.loads(configs[member].read_text())
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            wanted = {"listen": "node", "metrics_listen": "metrics"} if "-node-" in member else \
                {"listen": "s3", "admin_listen": "admin", "cluster_listen": "raft"}
            for key, port_name in wanted.items():
                if key not in cfg:
                    continue  # the witness has no S3 listener
                if ports.get(port_name) != port_of(cfg[key]):
                    err(where, f"{key} {cfg[key]} but the container's port {port_name} is {ports.get(port_name)}")
            mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
            claims = [c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates", [])]
            if cfg.get("data_dir") not in [mounts.get(c) for c in claims]:
                err(where, f"data_dir {cfg.get('data_dir')} is not where its volume is mounted")
            for key in ("cluster_ca", "cluster_cert", "cluster_key"):
                path = pathlib.PurePosixPath(cfg.get(key, ""))
                if str(path.parent) != mounts.get("config"):
                    err(where, f"{key} {path} is not in the config volume ({mounts.get('config')})")
            args = container.get("args", [])
            if args[args.index("--config") + 1].replace("$(POD_NAME)", pod) != f"/config/{member}.toml":
                err(where, f"does not read /config/{member}.toml")
            for entry in cfg.get("members", []) + cfg.get("nodes", []):
                host, port = entry["addr"].rsplit(":", 1)
                svc = services.get(host)
                if svc is None:
                    err(where, f"its config reaches {entry['addr']}, and no Service is named {host}")
                elif svc[1]["spec"].get("type") != "ExternalName" and \
                        int(port) not in [p["port"] for p in svc[1]["spec"].get("ports", [])]:
                    err(where, f"its config reaches {entry['addr']}, and Service {host} has no port {port}")
        for member in configs:
            if member not in pods and not (cluster == "witness" and member == "witness"):
                err(cluster, f"tessera init wrote {member}.toml, and no pod runs it")


def main(argv):
    root = pathlib.Path(argv[0])
    a, b = root / "dc-a", root / "dc-b"
    if "--write-dc-b" in argv:
        b.mkdir(exist_ok=True)
        for old in b.glob("*.yaml"):
            old.unlink()
        for path in sorted(a.glob("*.yaml")):
            (b / path.name).write_text(swap_sites(path.read_text()))
        print(f"wrote {b} from {a}")
        return 0
    names_a = sorted(p.name for p in a.glob("*.yaml"))
    names_b = sorted(p.name for p in b.glob("*.yaml"))
    if names_a != names_b:
        err("dc-b", f"files {names_b}, dc-a has {names_a}")
    for n in set(names_a) & set(names_b):
        if swap_sites((a / n).read_text()) != (b / n).read_text():
            err(f"dc-b/{n}", "is not dc-a's with the sites swapped (check_manifests.py --write-dc-b)")

    everyone = ["witness"]
    for site in SITES:
        gws, nodes = member_names(site)
        everyone += gws + nodes
    gateways = [g for s in SITES for g in member_names(s)[0]]
    clusters = {site: check_cluster(site, load(root / site), everyone) for site in SITES}
    clusters["witness"] = check_cluster("witness", load(root / "witness"), ["witness"] + gateways)
    if "--init-dir" in argv:
        check_init(clusters, pathlib.Path(argv[argv.index("--init-dir") + 1]))

    for e in errors:
        print(f"FAIL {e}")
    print(f"manifest rules: {len(errors)} broken")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
