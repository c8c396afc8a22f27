// Validates Kubernetes objects (YAML documents on stdin, e.g. `kubectl kustomize`'s output) against the API schemas
// of kubernetes-models (core and apps), @kubernetes-models/prometheus-operator and @kubernetes-models/gateway-api.
// Prints the objects as one JSON array on stdout; exits 1 listing every invalid or unknown object on stderr.
// With --plain, only converts the YAML documents to JSON (for files that are not Kubernetes objects: rule files).
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

const packages = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
};

async function modelOf(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : [null, apiVersion];
  const module = group === null ? `kubernetes-models/${version}` : `${packages[group] ?? "kubernetes-models"}/${group}/${version}`;
  try {
    return (await import(`${module}/${kind}`))[kind];
  } catch {
    return undefined;
  }
}

const objects = yaml.loadAll(readFileSync(0, "utf8")).filter((o) => o !== null && o !== undefined);
if (process.argv.includes("--plain")) {
  process.stdout.write(JSON.stringify(objects));
  process.exit(0);
}
const problems = [];
for (const object of objects) {
  const name = `${object.kind ?? "?"}/${object.metadata?.name ?? "?"}`;
  const Model = await modelOf(object.apiVersion ?? "", object.kind ?? "");
  if (Model === undefined) {
    problems.push(`${name}: no schema for ${object.apiVersion} ${object.kind}`);
    continue;
  }
  try {
    new Model(object).validate();
  } catch (error) {
    problems.push(`${name}: ${error.message}`);
  }
}
if (problems.length > 0) {
  process.stderr.write(problems.join("\n") + "\n");
  process.exit(1);
}
process.stdout.write(JSON.stringify(objects));
