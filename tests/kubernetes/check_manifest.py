#!/usr/bin/env python3
"""Checks deploy/kubernetes against the config it ships (issue 16): the manifest parses; the
probes, the container port and the Prometheus annotations use the port and paths of the config's
[supervisor] http; the container runs `procsup run` on the ConfigMap's file; the grace period
covers the stop timeouts; the exit-code contract holds (restartPolicy Always); and the config
passes `procsup check` (with /usr/local/bin/ mapped to the build's directory, where the demo
programs are, and the socket in a temp dir). The Containerfile is multi-stage on Debian 12 and
starts procsup as PID 1.

usage: check_manifest.py MANIFEST CONTAINERFILE PROCSUP_BINARY"""
import os
import re
import subprocess
import sys
import tempfile
import tomllib

import yaml


def fail(msg):
    print("check_manifest: " + msg, file=sys.stderr)
    sys.exit(1)


def seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not m:
        fail(f"cannot read the duration {text!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def main():
    manifest, containerfile, procsup = sys.argv[1:4]
    with open(manifest) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kinds = {d["kind"]: d for d in docs}
    if set(kinds) != {"ConfigMap", "Deployment"}:
        fail(f"expected a ConfigMap and a Deployment, found {sorted(kinds)}")
    cm, dep = kinds["ConfigMap"], kinds["Deployment"]
    (key, config_text), = cm["data"].items()
    cfg = tomllib.loads(config_text)
    sup = cfg.get("supervisor", {})
    http = sup.get("http", "")
    m = re.fullmatch(r"(.+):(\d+)", http)
    if not m:
        fail(f"the config's [supervisor] http {http!r} is not HOST:PORT")
    if m.group(1) in ("127.0.0.1", "localhost", "[::1]"):
        fail("http listens on loopback only: the kubelet's probes come to the pod IP")
    port = int(m.group(2))

    pod = dep["spec"]["template"]
    spec = pod["spec"]
    (c,) = spec["containers"]
    if dep["spec"]["selector"]["matchLabels"].items() > pod["metadata"]["labels"].items():
        fail("the selector does not match the pod's labels")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        g = c[probe]["httpGet"]
        if g["path"] != path or g["port"] != port:
            fail(f"{probe} is {g['path']} on {g['port']}, the config serves {path} on {port}")
    if "startupProbe" in c and c["startupProbe"]["httpGet"]["port"] != port:
        fail("startupProbe port differs from the config's")
    if [p["containerPort"] for p in c["ports"]] != [port]:
        fail(f"containerPort {c['ports']} is not {port}")
    ann = pod["metadata"]["annotations"]
    want = {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}
    for k, v in want.items():
        if ann.get(k) != v:
            fail(f"annotation {k} is {ann.get(k)!r}, expected {v!r}")

    # `procsup run` on the ConfigMap's file, as mounted.
    args = c["args"]
    if "run" not in args:
        fail(f"the container does not run `procsup run`: {args}")
    conf_path = args[args.index("run") + 1]
    vols = {v["name"]: v for v in spec["volumes"]}
    mounted = [vm for vm in c["volumeMounts"]
               if vols[vm["name"]].get("configMap", {}).get("name") == cm["metadata"]["name"]]
    if len(mounted) != 1 or os.path.join(mounted[0]["mountPath"], key) != conf_path:
        fail(f"{conf_path} is not the ConfigMap's {key} as mounted")
    sock_dir = os.path.dirname(sup.get("socket", "/run/procsup.sock"))
    if not any(vm["mountPath"] == sock_dir for vm in c["volumeMounts"]):
        fail(f"the control socket's directory {sock_dir} is not a writable volume (readOnlyRootFilesystem)")

    # Grace: one_for_one stops every program at once (the longest stop_timeout); the other
    # policies stop them in reverse order (the sum). Plus room for procsup's own exit.
    stops = [seconds(p.get("stop_timeout", "10s")) for p in cfg.get("program", [])]
    policy = sup.get("policy", "one_for_one")
    need = (max(stops) if policy == "one_for_one" else sum(stops)) + 5
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace < need:
        fail(f"terminationGracePeriodSeconds {grace} < {need} (stop timeouts {stops}, policy {policy})")
    if spec.get("restartPolicy", "Always") != "Always":
        fail("exit code 3 (gave up) must restart the container: restartPolicy Always")

    with open(containerfile) as f:
        cf = f.read()
    froms = re.findall(r"^FROM\s+(\S+)", cf, re.M)
    if len(froms) < 2 or not all(f.startswith("debian:12") for f in froms):
        fail(f"the Containerfile is not multi-stage on Debian 12: {froms}")
    if not re.search(r'^ENTRYPOINT \["/usr/local/bin/procsup"\]', cf, re.M):
        fail("the Containerfile's ENTRYPOINT is not procsup (PID 1)")

    # The shipped config passes `procsup check`.
    bindir = os.path.dirname(os.path.abspath(procsup))
    with tempfile.TemporaryDirectory() as tmp:
        text = config_text.replace("/usr/local/bin/", bindir + "/").replace(sock_dir + "/", tmp + "/")
        path = os.path.join(tmp, key)
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([procsup, "check", path], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            fail(f"procsup check rejects the ConfigMap's config:\n{r.stdout}{r.stderr}")
        if "warning:" in r.stderr:  # a missing binary passes check with a warning: not here
            fail(f"procsup check warns about the ConfigMap's config:\n{r.stderr}")
    print(f"check_manifest: ok (port {port}, grace {grace} s >= {need} s, config passes procsup check)")


if __name__ == "__main__":
    main()
