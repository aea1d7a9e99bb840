# Zoe on an existing Kubernetes cluster (plugins/backend-k8s/README.md).
# Services run as pods in the namespace zoe-k8s, one headless Service per
# execution. Relative paths resolve against this file's directory.
#
#   make build
#   kubectl apply -f examples/k8s/rbac.yaml          # the plugin's account and rights
#   bin/zoe users-file init --if-missing .zoe/users.csv
#   bin/zoe config validate examples/k8s.hcl
#   bin/zoe server -config examples/k8s.hcl
#
# The workspaces (workspace "dir" below) must be one shared filesystem
# (NFS, CephFS) mounted at the same path on this machine and on every node:
# pods mount a user's directory as a hostPath.

listen          = "127.0.0.1:5003"
deployment_name = "k8s"
data_dir        = "../.zoe/k8s-data"
log_level       = "info"
shop_dir        = "shop"

state {
  sqlite = "zoe.db" # relative to data_dir
}

auth "file" {
  users_file = "../.zoe/users.csv"
}

workspace "dir" {
  base_path = "/srv/zoe-workspaces" # the shared filesystem's mount point
}

backend "k8s" {
  # The account of examples/k8s/rbac.yaml (the README makes this file).
  # Empty: in-cluster inside a pod, else $KUBECONFIG or ~/.kube/config.
  kubeconfig = "../.zoe/k8s-kubeconfig"
  # context  = "lab"

  # Default zoe-<deployment_name>. examples/k8s/rbac.yaml creates it, so the
  # plugin's account need not have the right to create namespaces.
  namespace        = "zoe-k8s"
  create_namespace = false

  # Required: the podPidsLimit of the cluster's kubelets. Kubernetes has no
  # per-pod process limit, so Zoe relies on the kubelets' and refuses a
  # service that asks for less (containers.pids_limit, 1024 by default).
  pod_pids_limit = 1024

  # How users reach published ports: a NodePort Service per service, on the
  # node's InternalIP ("node_port"), or the pod's own address ("pod_ip",
  # when Zoe's machine routes to the pod network).
  endpoint_mode     = "node_port"
  node_address_type = "InternalIP"

  # Node labels with this prefix are Zoe's labels:
  #   kubectl label node n1 zoe.label/gpu=true   gives n1 the label "gpu".
  node_label_prefix = "zoe.label/"

  # Only the nodes this label selector selects, for a pool of a shared
  # cluster; by default every node.
  # node_selector = "zoe.label/pool=analytics"

  # Seconds a stopped service has between SIGTERM and SIGKILL.
  termination_grace_seconds = 10

  # A pod the cluster cannot schedule for this long fails its start with the
  # scheduler's reason; Zoe tries again later.
  pending_timeout = "5m"

  # Each user's workspace a PersistentVolumeClaim of theirs (made from the
  # settings below when missing, kept) instead of the workspace plugin's
  # directory on the shared filesystem.
  workspace_claims = false

  # Named volumes of ZApps are PersistentVolumeClaims, created when missing.
  volume_storage_class = ""
  volume_size          = "10Gi"
  volume_access_mode   = "ReadWriteMany"

  image_pull_policy = "IfNotPresent"

  # Requests a second to the API server at most (bursts of twice as many);
  # -1: no limit of the plugin's own, the API server's priority and
  # fairness bounds it.
  api_qps = -1
}
