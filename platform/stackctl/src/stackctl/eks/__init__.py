"""The EKS backend: render the eks overlay with released image digests, plan, deploy, roll back.

Modules:

- `cluster` — the cluster definition (platform/eks/cluster.yaml): name, region, rendering.
- `digests` — the image-digests file written by `push-images` and read by `deploy-eks`.
- `render`  — `kubectl kustomize` of the eks overlay with digests substituted; the plan table.
- `inputs`  — the overlay's deploy-time files (eks.env, secrets.env), on a temporary copy.
- `access`  — AWS credentials, kubeconfig context and RBAC checks, each failing with the fix.
- `kubectl` — the few kubectl operations a deploy needs, through stackctl.k8s.commands.
- `release` — the last good release kept in the cluster (ConfigMap) and the rollback plan.
- `deploy`  — apply, wait (stackctl.k8s.readiness, the one readiness engine), smoke, roll back.
- `connect` — port-forwards to the stack's Services and the `Endpoints` pointing at them.
- `smoke`   — the smoke subset of the integration suite (platform/eks/smoke-tests.txt).
- `backend` — `EksBackend` (stackctl.backend.Backend): connects to the released stack, never deploys.
- `images`  — build the platform images and push them to ECR by release tag; capture digests.
- `cli`     — `python -m stackctl.eks deploy|push-images|cluster-config` (the nox sessions call it).
"""
