// pgk8s-kubelet is the only emulated part of the real-control-plane test tier: a kubelet that
// registers one Ready node with a real kube-apiserver and runs the pods scheduled to it as local
// processes, each PostgreSQL pod a real server in its own network and mount namespace.
//
// What it does, and where a real kubelet differs:
//   - node: registered Ready, heartbeat through a Lease and periodic status updates;
//   - pods (pods.go): a sandbox process holds a network namespace (loopback plus a pod IP) and a
//     private mount namespace whose chroot shows the pod's volumes at their mount paths; images
//     are not pulled: an image whose repository ends in "postgresql" maps to the machine's
//     PostgreSQL server, which first initialises an empty volume the way the Bitnami image does;
//     other images fail as ErrImagePull/ImagePullBackOff; the container's exec readiness probe
//     runs for real (liveness probes do not); a server that exits is restarted with the
//     kubelet's back-off and reported as CrashLoopBackOff;
//   - streaming (server.go): exec, container logs and port-forward over the kubelet's own
//     streaming packages, on the port the node advertises; no TTY;
//   - volumes (volumes.go): hostPath PersistentVolumes for Pending claims of its StorageClasses,
//     deleted when released, and expansion for a class that allows it.
//
// It runs as root (namespaces, chroot, bind mounts); the server runs as the machine's postgres
// user, not as the chart's uid 1001, which has no passwd entry here.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// The provisioner name of the StorageClasses this kubelet serves.
const provisionerName = "pgk8s.test/hostpath"

// version is what the node reports as its kubelet version.
const version = "v1.34.4"

type config struct {
	kubeconfig string
	nodeName   string
	stateDir   string
	port       int
	pgBinDir   string
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "relay" {
		relay(os.Args[2])
		return
	}
	var cfg config
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", "", "kubeconfig with cluster-admin rights")
	flag.StringVar(&cfg.nodeName, "node-name", "pgk8s-node", "name of the node to register")
	flag.StringVar(&cfg.stateDir, "state-dir", "", "directory for pods and volumes (readable by the postgres user)")
	flag.IntVar(&cfg.port, "port", 10250, "port of the kubelet API (exec, logs, port-forward)")
	flag.StringVar(&cfg.pgBinDir, "postgres-bin", "", "PostgreSQL server binaries (default: pg_config --bindir)")
	klog.InitFlags(nil)
	flag.Parse()
	if cfg.kubeconfig == "" || cfg.stateDir == "" {
		fmt.Fprintln(os.Stderr, "usage: pgk8s-kubelet --kubeconfig FILE --state-dir DIR [--port N] [--node-name NAME]")
		os.Exit(64)
	}
	if err := run(cfg); err != nil {
		klog.ErrorS(err, "pgk8s-kubelet failed")
		os.Exit(1)
	}
}

func run(cfg config) error {
	restConfig, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return err
	}
	restConfig.QPS, restConfig.Burst = 50, 100
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	pgBinDir, err := findPostgres(cfg.pgBinDir)
	if err != nil {
		return err
	}
	for _, dir := range []string{"pods", "volumes"} {
		if err := os.MkdirAll(filepath.Join(cfg.stateDir, dir), 0o755); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.nodeName})

	if err := registerNode(ctx, client, cfg); err != nil {
		return fmt.Errorf("registering node %s: %w", cfg.nodeName, err)
	}
	go heartbeat(ctx, client, cfg)

	runtime := newRuntime(client, recorder, cfg, pgBinDir)
	go runtime.watchPods(ctx)
	go newProvisioner(client, recorder, cfg).run(ctx)

	server, err := newServer(runtime, cfg.port)
	if err != nil {
		return err
	}
	go func() {
		if err := server.ListenAndServeTLS("", ""); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "kubelet API server stopped")
			stop()
		}
	}()
	klog.InfoS("pgk8s-kubelet running", "node", cfg.nodeName, "port", cfg.port, "postgres", pgBinDir)
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = server.Shutdown(shutdownCtx)
	runtime.stopAll()
	return nil
}

func nodeObject(cfg config) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("8"),
		corev1.ResourceMemory:           resource.MustParse("16Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: cfg.nodeName,
			Labels: map[string]string{
				"kubernetes.io/hostname": cfg.nodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
				{Type: corev1.NodeHostName, Address: cfg.nodeName},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(cfg.port)}},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion:          version,
				ContainerRuntimeVersion: "pgk8s://" + version,
				OperatingSystem:         "linux",
				Architecture:            "amd64",
				OSImage:                 "pgk8s kubelet emulator",
			},
		},
	}
}

func nodeConditions() []corev1.NodeCondition {
	now := metav1.Now()
	condition := func(kind corev1.NodeConditionType, status corev1.ConditionStatus, reason, message string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: kind, Status: status, Reason: reason, Message: message, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return []corev1.NodeCondition{
		condition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		condition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		condition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		condition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
	}
}

func registerNode(ctx context.Context, client kubernetes.Interface, cfg config) error {
	node := nodeObject(cfg)
	created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = client.CoreV1().Nodes().Get(ctx, cfg.nodeName, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	created.Status = node.Status
	created.Status.Conditions = nodeConditions()
	_, err = client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

// heartbeat renews the node's Lease every 10 s and its Ready condition every minute, as a kubelet
// does; without them the node lifecycle controller would mark the node NotReady and evict.
func heartbeat(ctx context.Context, client kubernetes.Interface, cfg config) {
	leases := client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	lastStatus := time.Now()
	ticker := time.NewTicker(10 * time.Second)
	defer ticker.Stop()
	for {
		now := metav1.NewMicroTime(time.Now())
		lease, err := leases.Get(ctx, cfg.nodeName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: cfg.nodeName, Namespace: corev1.NamespaceNodeLease},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity:       ptr.To(cfg.nodeName),
					LeaseDurationSeconds: ptr.To[int32](40),
					RenewTime:            &now,
				},
			}, metav1.CreateOptions{})
		case err == nil:
			lease.Spec.RenewTime = &now
			_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		}
		if err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "renewing node lease")
		}
		if time.Since(lastStatus) > time.Minute {
			lastStatus = time.Now()
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				node, err := client.CoreV1().Nodes().Get(ctx, cfg.nodeName, metav1.GetOptions{})
				if err != nil {
					return err
				}
				node.Status.Conditions = nodeConditions()
				_, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
				return err
			})
			if err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "updating node status")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
