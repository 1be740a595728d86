// Package k8s owns the Kubernetes manifests that deploy omnikv-triton (deployment-cpu.yaml,
// deployment-gpu.yaml, service.yaml, the generated configmap-*.yaml, optional/servicemonitor.yaml) and
// their tests. It is its own Go module so that the backend's go.mod stays free of Kubernetes.
//
// The tests decode every document of every manifest strictly into the k8s.io/api types (an unknown or
// misspelt field fails), then check what a typed decode cannot: probe paths and ports, labels against
// selectors, one image everywhere and matching deploy/Dockerfile's Triton tag, the GPU variant asking for a
// GPU and running KIND_GPU instances, the ConfigMaps equal to model_repository/, memory limits that cover the
// models' KV budgets, and session affinity as long as a chat session's idle timeout.
//
// Run: cd deploy/k8s && go vet ./... && go test ./...   (tests/deploy/check.sh does).
package k8s
