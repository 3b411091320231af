// Validates every object of `helm template` output (read from stdin, multi-document YAML) against the Kubernetes
// API schemas of the npm package kubernetes-models (and @kubernetes-models/prometheus-operator for ServiceMonitor).
// Usage: helm template ... | node validate.mjs NODE_MODULES_DIR [LABEL]
// Exit 0 if every object validates; 1 with one line per error otherwise. Unknown kinds are errors too.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
const label = process.argv[3] || "stdin";
if (!modules) { console.error("usage: node validate.mjs NODE_MODULES_DIR [LABEL] < rendered.yaml"); process.exit(2); }
const load = (p) => import(pathToFileURL(join(modules, p)).href);
const YAML = await load("yaml/dist/index.js");

// apiVersion -> folder in kubernetes-models (core "v1" is at the top) or a CRD package.
function modelPath(apiVersion, kind) {
  if (apiVersion.startsWith("monitoring.coreos.com/"))
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}.js`;
  return `kubernetes-models/${apiVersion}/${kind}.js`;
}

const docs = YAML.parseAllDocuments(readFileSync(0, "utf8"));
let errors = 0, count = 0;
const kinds = {};
for (const doc of docs) {
  if (doc.errors.length) { console.error(`${label}: YAML error: ${doc.errors[0].message}`); errors++; continue; }
  const obj = doc.toJS();
  if (obj === null || obj === undefined) continue;
  const where = `${label}: ${obj.kind}/${obj.metadata?.name}`;
  if (!obj.apiVersion || !obj.kind) { console.error(`${where}: no apiVersion or kind`); errors++; continue; }
  const path = modelPath(obj.apiVersion, obj.kind);
  if (!existsSync(join(modules, path))) { console.error(`${where}: no schema for ${obj.apiVersion} ${obj.kind}`); errors++; continue; }
  const mod = await load(path);
  const Model = mod[obj.kind];
  try {
    new Model(obj).validate();
    count++;
    kinds[obj.kind] = (kinds[obj.kind] || 0) + 1;
  } catch (e) {
    errors++;
    console.error(`${where}: INVALID: ${e.message}`);
  }
}
const summary = Object.entries(kinds).map(([k, n]) => `${k}${n > 1 ? "x" + n : ""}`).join(" ");
console.log(`${label}: ${count} objects valid${errors ? `, ${errors} INVALID` : ""} (${summary})`);
process.exit(errors ? 1 : 0);
