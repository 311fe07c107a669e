"""The kind backend (and the pieces the EKS backend reuses).

Modules, in the order `KindBackend.up()` uses them:

- `dockerprobe` — does a Docker daemon answer? (stdlib only; the noxfile's skip reason)
- `preflight`   — is this machine able to run kind? Each failing check says the exact fix.
- `versions`    — pinned kind/kubectl/node-image versions (platform/kind/versions.env).
- `commands`    — the one seam through which kind/kubectl run (tests record instead).
- `kind`        — cluster config (port mappings from nodeports.env + ports.env), unique names,
                  fingerprints, kind CLI commands, teardown on SIGINT/SIGTERM.
- `images`      — build project images, cache third-party ones, `kind load image-archive`.
- `deploy`      — dev secrets, `kubectl kustomize`, `kubectl apply --server-side`.
- `readiness`   — the one readiness engine (rollouts, Jobs, pods, HTTP health) with fail-fast
                  diagnosis; used by kind and by EKS.
- `diagnostics` — events, describes, logs, Airflow task logs, `kind export logs`, index.md.
- `stages`      — per-stage deadlines and `reports/kind/durations.json`.
- `backend`     — `KindBackend`, the `stackctl.backend.Backend` implementation.
"""
